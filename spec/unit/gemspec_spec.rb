# frozen_string_literal: true

# The gemspec states what the gem runs on: Ruby 3.1 or later (Ruby 3.0 has no
# Process._fork, so forked workers that only read would never get their own
# bus threads), and ActiveSupport 6.1 or later.
RSpec.describe "synced_memory_store.gemspec" do
  subject(:spec) { Gem::Specification.load(File.expand_path("../../synced_memory_store.gemspec", __dir__)) }

  it "requires Ruby 3.1 or later" do
    expect(spec.required_ruby_version).to be_satisfied_by(Gem::Version.new("3.1.0"))
    expect(spec.required_ruby_version).not_to be_satisfied_by(Gem::Version.new("3.0.6"))
  end

  it "depends on ActiveSupport 6.1 or later" do
    activesupport = spec.dependencies.find { |dependency| dependency.name == "activesupport" }
    expect(activesupport.requirement).to be_satisfied_by(Gem::Version.new("6.1.0"))
    expect(activesupport.requirement).not_to be_satisfied_by(Gem::Version.new("6.0.6"))
  end
end
