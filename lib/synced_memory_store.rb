# frozen_string_literal: true

require "active_support"
require "active_support/cache"

require_relative "synced_memory_store/version"
require_relative "synced_memory_store/errors"
# The native core: in a checkout, built by bin/compile for this Ruby's ABI version (builds for
# several Rubies live side by side); in an installed gem, built by extconf.rb into the gem's
# extension directory.
begin
  require_relative "synced_memory_store/#{RbConfig::CONFIG["ruby_version"]}/synced_memory_store"
rescue LoadError
  require "synced_memory_store/synced_memory_store"
end
require_relative "synced_memory_store/node"
require_relative "synced_memory_store/bus_events"
require_relative "synced_memory_store/log_subscriber"
require_relative "synced_memory_store/fork_safety"
require_relative "synced_memory_store/redis_option"
require_relative "synced_memory_store/redis_option/sentinels"
require_relative "synced_memory_store/l2/muting"
require_relative "synced_memory_store/l2"
require_relative "synced_memory_store/l2/wrap"
require_relative "synced_memory_store/l2/redis_l2"
require_relative "synced_memory_store/l2/mem_cache_l2"
require_relative "synced_memory_store/store"
require_relative "synced_memory_store/railtie" if defined?(Rails::Railtie)

# A two-level ActiveSupport cache store whose in-process level is kept in sync
# across processes through Redis. See SyncedMemoryStore::Store.
module SyncedMemoryStore
end
