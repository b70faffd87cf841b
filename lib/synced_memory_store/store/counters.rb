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
      # within this process. Returns the new number, or nil when there was none.
      def increment(name, amount = 1, options = nil)
        count(:increment, name, amount, options)
      end

      # Subtracts +amount+ from the number under +name+; see #increment.
      def decrement(name, amount = 1, options = nil)
        count(:decrement, name, amount, options)
      end

      private

      def count(operation, name, amount, options)
        options = merged_options(options)
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

      # Adds +delta+ to the entry under +key+, keeping its expiry and version;
      # nil (and nothing written) when there is no live entry.
      def count_in_l1(key, version, delta, options)
        entry = read_entry(key, **options)
        return if entry.nil? || entry.expired? || entry.mismatched?(version)

        number = entry.value.to_i + delta
        store_value(key, number, entry.version, entry.expires_at, options)
        number
      end
    end
  end
end
