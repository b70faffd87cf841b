# frozen_string_literal: true

module SyncedMemoryStore
  class Store < ActiveSupport::Cache::Store
    # increment and decrement: with an L2 its atomic counter (and every L1
    # drops the key); without one, a read and a write under a lock, atomic
    # within this process.
    module Counters
      # Adds +amount+ to the number under +name+. With an L2, its atomic counter
      # does it (RedisCacheStore and MemCacheStore count raw values; read them
      # with <tt>raw: true</tt>); without one, the read and write are atomic
      # within this process. Returns the new number. A missing counter is
      # created with +amount+ (and the call's +expires_in+) on ActiveSupport
      # 7.1+, and left missing (nil) before, as MemoryStore does. Options may
      # be given as a Hash or as keywords.
      def increment(name, amount = 1, options = nil, **keywords)
        count(:increment, name, amount, options, keywords)
      end

      # Subtracts +amount+ from the number under +name+; see #increment.
      def decrement(name, amount = 1, options = nil, **keywords)
        count(:decrement, name, amount, options, keywords)
      end

      private

      def count(operation, name, amount, options, keywords)
        options = merged_options(keywords.empty? ? options : (options || {}).merge(keywords))
        key = normalize_key(name, options)
        instrument(operation, key, { amount: amount }) do
          if @l2
            publish = publish?(options)
            changing(key, publish) do |node, change|
              result = @l2.count(operation, key, amount, options)
              node.delete(key, publish: publish, change: change)
              result
            end
          else
            delta = operation == :increment ? amount : -amount
            @counter_lock.synchronize { count_in_l1(key, normalize_version(name, options), delta, options) }
          end
        end
      end

      # Adds +delta+ to the entry under +key+, keeping its expiry and version.
      # With no live entry, creates one holding +delta+ (ActiveSupport 7.1+),
      # or returns nil.
      def count_in_l1(key, version, delta, options)
        entry = read_entry(key, **options)
        if entry.nil? || entry.expired? || entry.mismatched?(version)
          return unless ActiveSupportVersions::COUNTERS_CREATE_MISSING

          store_value(key, delta, version, expiry(options), options)
          return delta
        end
        number = entry.value.to_i + delta
        store_value(key, number, entry.version, entry.expires_at, options)
        number
      end
    end
  end
end
