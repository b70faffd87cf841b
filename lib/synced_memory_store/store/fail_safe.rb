# frozen_string_literal: true

module SyncedMemoryStore
  class Store < ActiveSupport::Cache::Store
    # Fail-safe fetch (+fail_safe: { max_stale:, backoff: }+, off by default):
    # an entry is kept past its expiry for up to +max_stale+, in L1 and in L2
    # (whose physical lifetime is padded by +max_stale+, its logical expiry
    # unchanged); when a #fetch's block raises (or storing its value raises),
    # the fetch returns that expired value instead of raising. The key is then
    # served stale without running its block for +backoff+ seconds.
    #
    # Expired entries within +max_stale+ read as misses (they are never
    # returned by #read, #read_multi or #exist?), and are not deleted by the
    # read that finds them, as ActiveSupport's stores delete expired entries:
    # they stay for the fetch whose refresh fails.
    #
    # What fail-safe serves is what L1 holds for the key when the refresh
    # fails, looked up then: L1 is kept in sync with every write, delete,
    # clear and invalidation, and is not trusted while the bus is down, so a
    # value deleted, replaced or invalidated anywhere is never served stale,
    # nor one this process cannot vouch for. See the README's "Fail-safe".
    module FailSafe
      # Thrown by a single-flight waiter that leads after its runner failed,
      # while the key backs off: it serves the stale value without running
      # the block.
      BACKED_OFF = Object.new.freeze
      private_constant :BACKED_OFF

      # Counters of Store#stats, with fail_safe_hits (fetches answered with a
      # stale value) and fail_safe_backoffs (of those, answered without
      # running the block, the key backing off).
      def stats
        @refreshes.add_stats(super)
      end

      private

      # The store's +fail_safe:+ setting, checked (ConfigurationError).
      def start_fail_safe(setting)
        @fail_safe = FailSafePolicy.parse(setting, ConfigurationError)
        @refreshes = FailedRefreshes.new
      end

      # The FailSafePolicy for a call's merged +options+, or nil when off:
      # the store's, or the call's +fail_safe:+ (false, true, or a Hash over
      # the store's settings).
      def fail_safe_policy(options)
        return @fail_safe unless options.key?(:fail_safe)

        setting = options[:fail_safe]
        if setting && !@fail_safe
          raise ArgumentError, "fail_safe: per call needs fail_safe: on the store, which keeps expired entries " \
                               "(got #{setting.inspect})"
        end
        FailSafePolicy.parse(setting, ArgumentError, @fail_safe)
      end

      # How much longer than its expiry an entry written with +options+ is
      # kept, in L1 and L2 (seconds).
      def stale_seconds(options)
        fail_safe_policy(options)&.max_stale || 0
      end

      # The options of an L2 write: a lifetime (+expires_in+) padded by
      # +max_stale+, so the L2 keeps the entry (whose own expiry is unchanged)
      # for a fail-safe fetch in a process that no longer has it in L1.
      def l2_write_options(options)
        expires_in = options[:expires_in]
        return options unless expires_in

        stale = stale_seconds(options)
        stale.zero? ? options : options.merge(expires_in: expires_in.to_f + stale)
      end

      # ActiveSupport's read hook: an entry expired less than +max_stale+ ago
      # (the store's or the call's, the longer: a call that serves less, or
      # turns fail-safe off, takes nothing from the others) reads as a miss,
      # so that ActiveSupport does not delete it (everywhere) as it deletes
      # the expired entries it finds. With race_condition_ttl, an entry
      # within that window is returned, for ActiveSupport to serve while one
      # fetch regenerates it.
      def read_entry(key, **options)
        entry = super
        return entry unless entry&.expired? && kept_stale?(entry, options)

        race_ttl = options[:race_condition_ttl].to_i
        return entry if race_ttl.positive? && Time.now.to_f - entry.expires_at <= race_ttl

        options[:event]&.delete(:source)
        nil
      end

      # An entry read from L2 may fill L1 when it has not expired, or (with
      # fail-safe) expired less than +max_stale+ ago, so L1 has it if L2 fails.
      def fillable?(entry, options)
        super || kept_stale?(entry, options)
      end

      # Whether an expired +entry+ is within the longer of the store's and
      # the call's +max_stale+.
      def kept_stale?(entry, options)
        [@fail_safe, fail_safe_policy(options)].any? { |policy| policy&.covers?(entry) }
      end

      # ActiveSupport's hook for a fetch whose read missed (see SingleFlight,
      # which runs inside this): with fail-safe, a block that raises (or a
      # write of its value that raises) gives the stale value, if any.
      def save_block_result_to_cache(name, *key_and_options, &block)
        options = key_and_options.last
        policy = fail_safe_policy(options)
        return super if policy.nil? || options[:force]

        key = key_and_options.size > 1 ? key_and_options.first : normalize_key(name, options)
        stale = backed_off_value(name, key, options, policy)
        return serve_stale(name, stale, options, backed_off: true) unless MISS.equal?(stale)

        refresh_or_stale(name, key, options, policy) do |guard|
          super(name, *key_and_options) { |*arguments| guard.call { block.call(*arguments) } }
        end
      end

      # Runs a refresh (the block, given the guard that wraps the user's
      # block) and returns its value; when it raises, the stale value, or the
      # block's value when only storing it raised. A single-flight waiter
      # whose runner failed finds the key backing off in the guard.
      def refresh_or_stale(name, key, options, policy)
        fresh = stale = MISS
        guard = lambda do |&compute|
          stale = backed_off_value(name, key, options, policy)
          throw BACKED_OFF unless MISS.equal?(stale)

          fresh = failing(key, policy, &compute)
        end
        result = catch(BACKED_OFF) { yield guard }
        return serve_stale(name, stale, options, backed_off: true) unless MISS.equal?(stale)

        @refreshes.succeeded(key)
        result
      rescue StandardError
        return fresh unless MISS.equal?(fresh)

        stale = stale_value(name, key, options, policy)
        raise if MISS.equal?(stale)

        serve_stale(name, stale, options, backed_off: false)
      end

      # Runs the user's block; when it raises, the key backs off first (so
      # that a single-flight waiter woken by the failure sees it).
      def failing(key, policy)
        yield
      rescue StandardError
        @refreshes.failed(key, policy.backoff)
        raise
      end

      # The stale value of +key+ when it is backing off, else MISS.
      def backed_off_value(name, key, options, policy)
        @refreshes.backing_off?(key) ? stale_value(name, key, options, policy) : MISS
      end

      # What L1 holds for +key+ now, if its version matches and it expired
      # less than +max_stale+ ago (or not at all), else MISS. Looked up now,
      # not kept from the fetch's read: a delete, write, clear or
      # invalidation since then has removed or replaced it, and nothing is
      # returned while L1 is not trusted.
      def stale_value(name, key, options, policy)
        parts = @node.entry(key)
        entry = entry_from_l1(key, *parts) if parts
        # A tagged entry whose tags were invalidated since is never served.
        entry &&= untagged_entry(entry)
        return MISS unless entry && policy.covers?(entry) && !entry.mismatched?(normalize_version(name, options))

        entry.value
      end

      # Returns a stale +value+ from #fetch: counted, and reported as
      # <tt>cache_fetch_hit</tt> with <tt>stale: true</tt>.
      def serve_stale(name, value, options, backed_off:)
        @refreshes.served(backed_off: backed_off)
        instrument(:fetch_hit, name, options.merge(stale: true)) { nil }
        value
      end
    end
  end
end
