# frozen_string_literal: true

# The stores that spec/rails/cache_behaviors_test.rb can run Rails' cache behaviour tests against,
# chosen with STORE=<name>. spec/rails/run also reads this table (to list the default stores), so
# this file must stay loadable without ActiveSupport, the extension or Redis: anything a store needs
# is required inside its `build`/`check` lambdas, i.e. only when that store is actually under test.
#
# Each entry:
#   build:   ->(options) { store }  -- called by the tests' `lookup_store(options)`, exactly where Rails'
#            own store tests call `ActiveSupport::Cache.lookup_store(:memory_store, options)`.
#   enabled: whether `spec/rails/run` (no arguments) runs it. A disabled store still runs when named
#            explicitly (`spec/rails/run synced_l1`), so it can be tried before it is switched on.
#   check:   optional ->() { nil or "reason it can't run here" }, evaluated before any test runs.
#   prepare: optional ->() { ... } run once before any test (e.g. require the gem); if it raises,
#            the run stops there instead of every test erroring the same way.
#   extras:  name of the module in spec/rails/store_extras.rb with this store's own extra/overriding
#            tests, or nil.
#   after_run: optional ->() { ... } run once after all tests (clean-up of external state).
module RailsCacheBehaviors
  Store = Struct.new(:name, :enabled, :check, :prepare, :build, :extras, :after_run, keyword_init: true) do
    def unavailable_reason
      check&.call
    end
  end

  LIB_DIR = File.expand_path("../../lib", __dir__)

  module_function

  def require_gem
    $LOAD_PATH.unshift(LIB_DIR) unless $LOAD_PATH.include?(LIB_DIR)
    require "synced_memory_store"
  end

  # Every RedisCacheStore built for one test process gets its own namespace under this prefix, so
  # tests can't see each other's entries (Rails' behaviour tests expect an empty cache in every
  # test) and clean-up can find everything this process wrote.
  def redis_prefix
    @redis_prefix ||= "synced_memory_store:rails-behaviors:#{Process.pid}:#{Time.now.to_i}"
  end

  def redis_l2
    @redis_l2_count = (@redis_l2_count || 0) + 1
    ActiveSupport::Cache::RedisCacheStore.new(url: ENV.fetch("REDIS_URL"),
                                              namespace: "#{redis_prefix}:#{@redis_l2_count}")
  end

  # A redis-server of our own on a free loopback port, stopped by pid once the tests have run
  # (Minitest runs them from an at_exit hook, so a plain at_exit would stop it too early).
  def start_private_redis
    require_relative "../support/redis_server"
    server = RedisServer.start(stop_at_exit: false)
    Minitest.after_run { server.stop }
    ENV["REDIS_URL"] = server.url
  end

  def redis_unavailable_reason
    if ENV["REDIS_URL"].to_s.empty?
      return system("command -v redis-server >/dev/null") ? nil : "REDIS_URL is not set and redis-server is missing"
    end

    require "redis"
    Redis.new(url: ENV.fetch("REDIS_URL")).tap(&:ping).close
    nil
  rescue StandardError => e
    "Redis at REDIS_URL is not reachable (#{e.class}: #{e.message})"
  end

  def redis_cleanup
    redis = Redis.new(url: ENV.fetch("REDIS_URL"))
    redis.scan_each(match: "#{redis_prefix}:*").each_slice(500) { |keys| redis.del(*keys) }
    redis.close
  end

  STORES = [
    Store.new(
      name: "memory_store",
      enabled: true,
      build: ->(options) { ActiveSupport::Cache.lookup_store(:memory_store, options) },
      extras: "MemoryStoreExtras"
    ),
    Store.new(
      name: "synced_l1",
      enabled: true,
      prepare: -> { require_gem },
      build: ->(options) { SyncedMemoryStore::Store.new(sync: false, cache: nil, **options) },
      extras: "SyncedStoreExtras"
    ),
    Store.new(
      name: "synced_memory_l2",
      enabled: true,
      prepare: -> { require_gem },
      build: lambda { |options|
        SyncedMemoryStore::Store.new(sync: false, cache: ActiveSupport::Cache::MemoryStore.new, **options)
      },
      extras: "SyncedStoreExtras"
    ),
    Store.new(
      name: "synced_redis_l2",
      enabled: true, # against REDIS_URL when set, else a private redis-server started for the run
      check: -> { redis_unavailable_reason },
      prepare: lambda {
        require_gem
        start_private_redis if ENV["REDIS_URL"].to_s.empty?
        require "active_support/cache/redis_cache_store"
      },
      build: ->(options) { SyncedMemoryStore::Store.new(sync: false, cache: redis_l2, **options) },
      extras: "SyncedStoreExtras",
      after_run: -> { redis_cleanup }
    )
  ].to_h { |store| [store.name, store] }.freeze

  def fetch(name)
    STORES.fetch(name) do
      abort "Unknown STORE=#{name.inspect}; known stores: #{STORES.keys.join(", ")} (see #{__FILE__})"
    end
  end

  # What `spec/rails/run` runs when given no store names: enabled stores that can run here.
  # Prints why the others are left out.
  def default_names(out: $stderr)
    STORES.values.select do |store|
      reason = store.enabled ? store.unavailable_reason : "not enabled in #{__FILE__}"
      out.puts "skipping #{store.name}: #{reason}" if reason
      reason.nil?
    end.map(&:name)
  end
end
