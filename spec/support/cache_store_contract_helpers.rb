# frozen_string_literal: true

# Support objects for the "an ActiveSupport cache store" shared examples
# (spec/support/shared_examples/). Nothing here depends on a particular store.
module CacheStoreContract
  # A record with a recyclable cache key: the key stays the same while the
  # version changes, like an ActiveRecord model with cache versioning enabled.
  VersionedModel = Struct.new(:cache_key, :cache_version)

  # An object that names its own cache key and carries a value to generate.
  KeyedModel = Struct.new(:cache_key, :title)

  # An object without cache_key whose key comes from to_param.
  ParamModel = Struct.new(:param) do
    def to_param
      param
    end
  end

  # An object that responds to both cache_key and to_param.
  KeyAndParamModel = Struct.new(:cache_key) do
    def to_param
      "to-param-must-not-be-used"
    end
  end

  # An object that also offers cache_key_with_version, which stores ignore
  # when building the key (the version travels separately, via cache_version).
  UnversionedKeyModel = Struct.new(:cache_key) do
    def cache_key_with_version
      "#{cache_key}-v1"
    end
  end

  # A coder that records every entry a store hands it. Payloads are Marshal
  # strings, so it works for stores that keep payloads in memory or on disk.
  class SpyCoder
    attr_reader :dumped_entries, :loaded_entries

    def initialize
      @dumped_entries = []
      @loaded_entries = []
    end

    def dump(entry)
      @dumped_entries << entry
      Marshal.dump(entry)
    end

    def load(payload)
      # The payload is one this coder produced in #dump.
      entry = Marshal.load(payload) # rubocop:disable Security/MarshalLoad
      @loaded_entries << entry
      entry
    end
  end

  Event = Struct.new(:name, :payload)

  # What the contract expects where ActiveSupport versions differ: it follows
  # what that version's MemoryStore does (memory_store_contract_spec.rb proves
  # it against MemoryStore and FileStore on every version the suite runs on).
  module Versions
    def self.since?(version)
      ActiveSupport.gem_version >= Gem::Version.new(version)
    end

    # 7.1: fetch's block gets the name and an ActiveSupport::Cache::WriteOptions.
    FETCH_YIELDS_OPTIONS = since?("7.1")
    # 7.1: write_multi with nothing to write returns at once, publishing nothing;
    # events without a key (cleanup) carry their Hash in the payload, not as :key.
    EMPTY_MULTI_PUBLISHES = !since?("7.1")
    KEYLESS_EVENTS = since?("7.1")
    # 7.1: MemoryStore's increment and decrement change an existing counter
    # without publishing its read and write; 8.0 publishes one counter event.
    COUNTER_READ_WRITE_EVENTS = !since?("7.1")
    COUNTER_EVENTS_EVERYWHERE = since?("8.0")
    # 7.2: single-key events carry the normalized key (namespace, and for
    # FileStore the file's path), not the name as given; fetch_multi publishes
    # its write_multi after its read_multi.
    NORMALIZED_EVENT_KEYS = since?("7.2")
    FETCH_MULTI_WRITES_AFTER_READ = since?("7.2")
    # 7.1: a missing counter is created; before, it stays missing.
    COUNTERS_CREATE_MISSING = since?("7.1")
  end

  module Helpers
    # Runs the block and returns the cache_*.active_support events published
    # while it ran, in the order their instrumentation blocks finished.
    def cache_events
      events = []
      subscriber = ActiveSupport::Notifications.subscribe(/\Acache_.*\.active_support\z/) do |name, *, payload|
        events << Event.new(name, payload.dup)
      end
      yield
      events
    ensure
      ActiveSupport::Notifications.unsubscribe(subscriber) if subscriber
    end

    def event_names(events)
      events.map(&:name)
    end

    # The :key a single-key event carries for +name+ (see Versions).
    def event_key(name, store = cache)
      Versions::NORMALIZED_EVENT_KEYS ? store.send(:normalize_key, name, store.options) : name
    end

    # What fetch yields to its block besides the name (see Versions).
    def fetch_block_extras
      Versions::FETCH_YIELDS_OPTIONS ? [an_instance_of(ActiveSupport::Cache::WriteOptions)] : []
    end
  end
end
