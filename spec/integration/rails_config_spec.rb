# frozen_string_literal: true

require "open3"
require "rbconfig"

# `config.cache_store = :synced_memory_store, …` in a Rails application, booted
# in its own process (a Rails application is process-wide state).
RSpec.describe "config.cache_store = :synced_memory_store" do
  def run_ruby(script)
    lib = File.expand_path("../../lib", __dir__)
    # RUBYOPT passes on: the booted app loads the same Rails as this process.
    Open3.capture2e(RbConfig.ruby, "-I", lib, "-e", script)
  end

  it "makes Rails.cache a SyncedMemoryStore::Store with the configured L2" do
    output, status = run_ruby(<<~RUBY)
      require "rails"
      require "active_support/railtie"
      class DemoApp < Rails::Application
        config.eager_load = false
        config.logger = Logger.new(nil)
        config.secret_key_base = "x" * 64
        config.cache_store = :synced_memory_store, { cache: [:memory_store, { size: 1_048_576 }], sync: false }
      end
      DemoApp.initialize!
      Rails.cache.write("greeting", "hello")
      puts Rails.cache.class.name, Rails.cache.read("greeting"), Rails.cache.inspect
    RUBY

    expect(status).to be_success, output
    expect(output.lines.map(&:chomp).first(2)).to eq(%w[SyncedMemoryStore::Store hello])
    expect(output).to include("l2=ActiveSupport::Cache::MemoryStore")
  end

  it "signs bus messages with a key derived from secret_key_base unless told otherwise" do
    output, status = run_ruby(<<~RUBY)
      require "rails"
      require "active_support/railtie"
      require "synced_memory_store"
      class SignedApp < Rails::Application
        config.eager_load = false
        config.logger = Logger.new(nil)
        config.secret_key_base = "s" * 64
        config.cache_store = :synced_memory_store, { redis: "redis://127.0.0.1:1/0", reconnect_max: 60 }
      end
      SignedApp.initialize!
      secret = Rails.application.config.cache_store.last[:secret]
      puts Rails.cache.inspect, secret.bytesize
      puts secret == ActiveSupport::KeyGenerator.new("s" * 64, iterations: 1000).generate_key("synced_memory_store bus", 32)
    RUBY

    expect(status).to be_success, output
    expect(output.lines.map(&:chomp)).to include(a_string_matching(/sync=redis:.* signed /), "32", "true")
  end

  it "is found by ActiveSupport::Cache.lookup_store without requiring the gem first" do
    output, status = run_ruby(<<~RUBY)
      require "active_support"
      require "active_support/cache"
      store = ActiveSupport::Cache.lookup_store(:synced_memory_store, sync: false)
      store.write("k", [1, 2])
      p store.class, store.read("k")
    RUBY

    expect(status).to be_success, output
    expect(output).to eq("SyncedMemoryStore::Store\n[1, 2]\n")
  end
end
