# frozen_string_literal: true

module SyncedMemoryStore
  class Store < ActiveSupport::Cache::Store
    # Changes made by this process: L2 first, then L1 and the bus.
    #
    # A change that goes through L2 is registered with the node before the L2
    # call (#changing), so that a concurrent change from another process is
    # noticed (see the README's "How sync works"). Each key is then finished
    # by a node write or delete, and the change always ends in an +ensure+:
    # keys it did not finish (the L2 call raised, before or after changing L2,
    # or refused) are dropped from every L1. So whatever an L2 call raises —
    # a TypeError halfway through a write_multi, a Timeout::Error after the SET
    # reached Redis — every process falls back to L2 for what it may have
    # changed.
    module Changes
      private

      # Runs the L2 half of a change to +keys+ (an Array, or one key), yielding
      # the node (checked for closing and forks, and kept for the whole change)
      # and the change's id.
      def changing(keys, publish)
        node = bus_node
        change = node.begin_change(keys, publish: publish)
        yield node, change
      ensure
        node&.end_change(change) if change
      end

      # Stores +value+ in L2 (unless <tt>persist: false</tt>, which removes the
      # key from L2) and then in L1, publishing it unless <tt>silent: true</tt>.
      # Returns false, leaving the key out of every L1, when L2 refuses
      # (unless_exist found an entry), and false or (ActiveSupport 7.2+) nil
      # when it fails. A raw value goes to L1 in the form
      # the L2 gives it back in, so every process reads the same. A value that
      # cannot be serialized raises TypeError with nothing stored: L2 raises before
      # storing, and a value only L1 cannot encode is taken back out of L2.
      # With +tags:+ the value is stored with its tags' versions (see Tags).
      def store_value(key, value, version, expires_at, options, entry: nil)
        if (tagged = tagged_for_write(value, entry, options))
          value = tagged
          entry = nil
        end
        unless @l2
          return store_in_l1(bus_node, key, value, options, version: version, expires_at: expires_at, entry: entry)
        end

        changing(key, publish?(options)) do |node, change|
          if options[:persist] == false
            @l2.delete_entry(key, options)
          else
            entry ||= build_entry(value, version, expires_at)
            written = @l2.write_entry(key, l2_entry(entry), l2_write_options(options))
            return written unless written

            value = @l2.raw_value(value) if options[:raw]
          end
          begin
            store_in_l1(node, key, value, options, version: version, expires_at: expires_at, entry: entry,
                                                   change: change)
          rescue TypeError
            @l2.delete_entry(key, options) unless options[:persist] == false
            raise
          end
        end
      end

      # The L1 half of a write: stores the value (or, with a coder, the entry
      # the coder dumps) under +key+ in +node+, finishing +change+'s key.
      def store_in_l1(node, key, value, options, version:, expires_at:, entry: nil, change: nil)
        publish = publish?(options)
        keep = keep_for(expires_at, options)
        if @entry_coder
          bytes = dump_entry(entry || build_entry(value, version, expires_at), options)
          return node.write_coded(key, bytes, version: version, expires_at: expires_at, keep_for: keep,
                                              publish: publish, change: change)
        end
        node.write(key, value, version: version, expires_at: expires_at, keep_for: keep,
                               compress_threshold: compress_threshold(options),
                               unless_exist: options[:unless_exist] && !@l2, publish: publish, change: change)
      end

      # ActiveSupport's hook for writes it builds itself (race_condition_ttl
      # extensions, generic paths): true, false, or (ActiveSupport 7.2+) nil
      # when the L2 failed.
      def write_entry(key, entry, **options)
        store_value(key, entry.value, entry.version, entry.expires_at, options, entry: entry)
      end

      # ActiveSupport's hook: writes <tt>{ key => Entry }</tt>, to L2 in one call.
      def write_multi_entries(entries, **options)
        return true if entries.empty?

        entries = tagged_entries(entries, options)
        unless @l2
          entries.each_with_object(bus_node) do |(key, entry), node|
            store_in_l1(node, key, entry.value, options, version: entry.version, expires_at: entry.expires_at,
                                                         entry: entry)
          end
          return true
        end

        changing(entries.keys, publish?(options)) do |node, change|
          return false unless write_multi_to_l2(entries, options)

          entries.each do |key, entry|
            value = options[:raw] && options[:persist] != false ? @l2.raw_value(entry.value) : entry.value
            store_in_l1(node, key, value, options, version: entry.version, expires_at: entry.expires_at,
                                                   entry: entry, change: change)
          end
          true
        end
      end

      # The L2 half of write_multi_entries; false when the L2 reports a failure.
      def write_multi_to_l2(entries, options)
        if options[:persist] == false
          @l2.delete_multi_entries(entries.keys, options)
          return true
        end
        @l2.write_multi_entries(entries.transform_values { |entry| l2_entry(entry) }, l2_write_options(options))
      end

      # ActiveSupport's hook: deletes +key+ from both levels, and from every
      # other process's L1 unless <tt>silent: true</tt>.
      def delete_entry(key, **options)
        publish = publish?(options)
        changing(key, publish) do |node, change|
          deleted = @l2 ? @l2.delete_entry(key, options) : false
          node.delete(key, publish: publish, change: change) || deleted
        end
      end

      # ActiveSupport's hook: deletes +keys+ from both levels; returns how many
      # existed (by L2's count when there is an L2, which holds everything L1 does).
      def delete_multi_entries(keys, **options)
        publish = publish?(options)
        changing(keys, publish) do |node, change|
          l2_count = @l2&.delete_multi_entries(keys, options)
          l1_count = keys.count { |key| node.delete(key, publish: publish, change: change) }
          l2_count || l1_count
        end
      end
    end
  end
end
