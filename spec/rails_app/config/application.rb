# frozen_string_literal: true

require "logger"
require "rails"
require "action_dispatch/railtie"
require "synced_memory_store"
require "active_support/cache/redis_cache_store"

# A minimal application whose cache is the store as production configures it:
# a RedisCacheStore L2 shared by every worker, and the bus on its own Redis,
# signed with the key the Railtie derives from secret_key_base.
class SyncedApp < Rails::Application
  config.eager_load = false
  config.secret_key_base = ENV.fetch("SECRET_KEY_BASE")
  config.logger = Logger.new(ENV.fetch("LOG_PATH"))
  config.log_level = :info
  config.hosts.clear
  config.public_file_server.enabled = false
  config.cache_store = :synced_memory_store, {
    cache: [:redis_cache_store, { url: ENV.fetch("L2_URL") }],
    redis: ENV.fetch("BUS_URL"),
    channel: ENV.fetch("BUS_CHANNEL"),
    health_interval: 0.05,
    health_timeout: 0.5
  }
end

require_relative "../cache_endpoints"
require_relative "routes"
