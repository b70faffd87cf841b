# frozen_string_literal: true

# The gemspec states what the gem runs on, the range that is tested or read:
# Ruby 3.1 to 3.4 (Ruby 3.0 has no Process._fork, so forked workers that only
# read would never get their own bus threads), and ActiveSupport 6.1 to 8.1.
RSpec.describe "synced_memory_store.gemspec" do
  subject(:spec) { Gem::Specification.load(File.expand_path("../../synced_memory_store.gemspec", __dir__)) }

  it "requires Ruby 3.1 to 3.4" do
    expect(%w[3.1.0 3.3.8 3.4.1].map { |v| spec.required_ruby_version.satisfied_by?(Gem::Version.new(v)) })
      .to all(be(true))
    expect(%w[3.0.6 3.5.0].map { |v| spec.required_ruby_version.satisfied_by?(Gem::Version.new(v)) })
      .to all(be(false))
  end

  it "depends on ActiveSupport 6.1 to 8.1" do
    activesupport = spec.dependencies.find { |dependency| dependency.name == "activesupport" }
    expect(%w[6.1.0 7.2.2 8.1.3].map { |v| activesupport.requirement.satisfied_by?(Gem::Version.new(v)) })
      .to all(be(true))
    expect(%w[6.0.6 8.2.0].map { |v| activesupport.requirement.satisfied_by?(Gem::Version.new(v)) })
      .to all(be(false))
  end
end
