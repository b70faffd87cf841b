# frozen_string_literal: true

module SyncedMemoryStore
  class Store < ActiveSupport::Cache::Store
    # Reads: L1 first, then L2, whose entry fills L1 unless the key changed
    # while L2 was being read. These are ActiveSupport's entry-level read
    # hooks (read_entry, read_multi_entries), which its public methods call.
    # When the read is instrumented, its payload says where a hit came from:
    # <tt>source: :l1</tt> or <tt>:l2</tt> (cache_read), and for several names
    # <tt>sources: { name => :l1 or :l2 }</tt> (cache_read_multi).
    module Reads
      private

      # The entry under +key+ from L1, else from L2 (which then fills L1), as
      # a read returns it (a tagged entry unwrapped, or nil when its tags
      # moved; see Tags). Expired entries are returned, for ActiveSupport to
      # judge (race_condition_ttl serves them).
      def read_entry(key, **options)
        return if options[:force_miss]

        entry, source = l1_or_l2_entry(key, options)
        entry &&= untagged_entry(entry)
        options[:event][:source] = source if entry && options[:event]
        entry
      end

      # <tt>[entry, :l1 or :l2]</tt>: the entry under +key+ as stored, from
      # L1, else from L2.
      def l1_or_l2_entry(key, options)
        parts = @node.entry(key)
        entry = entry_from_l1(key, *parts) if parts
        return [entry, :l1] if entry

        [entry_from_l2(key, options), :l2]
      end

      # Reads +key+ from L2 and fills L1 with it, unless the key changed (or L1
      # was cleared) while L2 was being read.
      def entry_from_l2(key, options)
        return unless @l2

        ticket = @node.ticket
        entry = @l2.read_entry(key, options)
        @node.count_l2(!entry.nil?)
        fill(key, entry, ticket, options) if entry && fillable?(entry, options)
        entry
      end

      # Whether an entry read from L2 may fill L1 (see FailSafe for expired
      # ones).
      def fillable?(entry, _options)
        !entry.expired?
      end

      def fill(key, entry, ticket, options)
        attributes = { ticket: ticket, version: entry.version, expires_at: entry.expires_at,
                       keep_for: keep_for(entry.expires_at, options) }
        if @entry_coder
          @node.fill_coded(key, dump_entry(entry, options), **attributes)
        else
          @node.fill(key, entry.value, compress_threshold: compress_threshold(options), **attributes)
        end
      rescue TypeError
        # L2's coder holds a value Marshal cannot dump: serve it from L2 only.
        false
      end

      # ActiveSupport's hook: reads names, L1 first, then every miss from L2 in
      # one multi-read; returns <tt>{ name => value }</tt> in the order given.
      def read_multi_entries(names, **options)
        return {} if options[:force_miss]

        found, missing = read_multi_from_l1(names, options)
        sources = found.transform_values { :l1 } if options[:event]
        read_missing_from_l2(missing, found, options) if @l2 && !missing.empty?
        if sources
          found.each_key { |name| sources[name] ||= :l2 }
          options[:event][:sources] = sources
        end
        names.each_with_object({}) { |name, values| values[name] = found[name] if found.key?(name) }
      end

      # <tt>[{ name => value found in L1 }, { key => [name, version] missing }]</tt>.
      def read_multi_from_l1(names, options)
        found = {}
        missing = {}
        names.each do |name|
          key = normalize_key(name, options)
          version = normalize_version(name, options)
          value = l1_value(key, version)
          value = untagged(value) if value.instance_of?(Array)
          if MISS.equal?(value)
            missing[key] = [name, version]
          else
            found[name] = value
          end
        end
        [found, missing]
      end

      # The value under +key+ in L1, judged by expiry and +version+, or MISS.
      def l1_value(key, version)
        return @node.read(key, version, MISS) unless @entry_coder

        parts = @node.entry(key)
        entry = entry_from_l1(key, *parts) if parts
        return MISS unless entry

        if entry.expired?
          # With fail-safe, the expired entry stays for a fetch that fails.
          @node.forget(key) unless @fail_safe
          MISS
        else
          entry.mismatched?(version) ? MISS : entry.value
        end
      end

      # Expired entries L2 returns are left to it (RedisCacheStore and
      # MemCacheStore expire them on their own): deleting them here would race
      # with a fresh value written meanwhile, and tell nobody.
      def read_missing_from_l2(missing, found, options)
        ticket = @node.ticket
        entries = @l2.read_multi_entries(missing.keys, options)
        missing.each do |key, (name, version)|
          entry = entries[key]
          @node.count_l2(!entry.nil?)
          next if entry.nil?

          fill(key, entry, ticket, options) if fillable?(entry, options)
          next if entry.expired? || entry.mismatched?(version)

          value = untagged(entry.value)
          found[name] = value unless MISS.equal?(value)
        end
      end
    end
  end
end
