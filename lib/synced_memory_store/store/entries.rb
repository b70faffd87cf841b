# frozen_string_literal: true

module SyncedMemoryStore
  class Store < ActiveSupport::Cache::Store
    # ActiveSupport's entries across its versions: building an
    # ActiveSupport::Cache::Entry from what L1 holds, the entry an L2 expects,
    # and the expiry arithmetic both levels share.
    module Entries
      # ActiveSupport's default compression threshold, for +compress: true+.
      DEFAULT_COMPRESS_THRESHOLD = 1024

      # How long L1 keeps an expired entry written with +race_condition_ttl+, so
      # the reader that regenerates it can serve the stale value meanwhile
      # (RedisCacheStore and MemCacheStore pad their TTLs the same way).
      RACE_CONDITION_GRACE = 300.0

      private

      # The absolute expiry (seconds since the epoch, by Ruby's clock) for
      # +options+, or nil. ActiveSupport's Entry computes it the same way.
      def expiry(options)
        expires_in = options[:expires_in]
        Time.now.to_f + expires_in.to_f if expires_in
      end

      # How long L1 may keep an entry expiring at +expires_at+: until then, plus
      # the race_condition_ttl grace and fail-safe's max_stale; at least the
      # +expires_in+ the caller gave. (The store's l1_expires_in caps it
      # natively.)
      def keep_for(expires_at, options)
        return unless expires_at

        seconds = options[:expires_in]&.to_f || (expires_at - Time.now.to_f)
        seconds += RACE_CONDITION_GRACE if options[:race_condition_ttl]
        seconds + stale_seconds(options)
      end

      def compress_threshold(options)
        options[:compress_threshold] || DEFAULT_COMPRESS_THRESHOLD if options[:compress]
      end

      # An ActiveSupport entry with exactly this version and expiry, built the same
      # way every time from the same inputs. (6.1 and 7.0 take compress options in
      # Entry.new, 7.1+ ignore them. 6.1 stamps a creation time and keeps the
      # expiry relative to it; the stamp is pinned to the expiry so the entry is
      # the same whenever it is rebuilt and expires_at stays exact. 7.0+ keep an
      # absolute expiry and a fixed creation time themselves.)
      def build_entry(value, version, expires_at, compressed: false)
        entry = ActiveSupport::Cache::Entry.new(value, version: version, compress: compressed, compress_threshold: 0)
        if ActiveSupportVersions::RELATIVE_EXPIRY
          entry.instance_variable_set(:@created_at, expires_at || 0.0)
          entry.instance_variable_set(:@expires_in, expires_at ? 0.0 : nil)
        elsif expires_at
          entry.expires_at = expires_at
        end
        entry
      end

      # The entry as L2 would build it from its own compression settings: on
      # ActiveSupport < 7.0 compression happens in Entry.new, later in the L2's
      # serializer, which reads the L2's options itself.
      def l2_entry(entry)
        l2_options = @l2.store.options
        return entry unless l2_options[:compress] && ActiveSupportVersions::RELATIVE_EXPIRY

        l2 = ActiveSupport::Cache::Entry.new(
          entry.value, version: entry.version, compress: true,
                       compress_threshold: l2_options[:compress_threshold] || DEFAULT_COMPRESS_THRESHOLD
        )
        l2.expires_at = entry.expires_at if entry.expires_at
        l2
      end

      # The bytes the store's coder makes of +entry+: compressed by the coder
      # itself when the store (or the call) asks for compression and the coder
      # can (ActiveSupport 7.0+ coders answer dump_compressed), as
      # ActiveSupport's serialize_entry does.
      def dump_entry(entry, options)
        if options[:compress] && @entry_coder.respond_to?(:dump_compressed)
          @entry_coder.dump_compressed(entry, options[:compress_threshold] || DEFAULT_COMPRESS_THRESHOLD)
        else
          @entry_coder.dump(entry)
        end
      end

      # The Entry for what the native node returned for +key+ (see
      # Node#entry), or nil when this process cannot decode it: bytes a coder
      # made while this store has none, or its coder fails on them (a peer
      # with another coder, during a rolling deploy). Such an entry is
      # discarded and counted in stats[:undecodable], never raised.
      def entry_from_l1(key, value, version, expires_at, form)
        return build_entry(value, version, expires_at, compressed: form == :compressed) unless form == :coded

        entry = @entry_coder&.load(value)
        return entry if entry.is_a?(ActiveSupport::Cache::Entry)

        @node.discard(key)
        nil
      rescue StandardError
        @node.discard(key)
        nil
      end
    end
  end
end
