# frozen_string_literal: true

module SyncedMemoryStore
  class Store < ActiveSupport::Cache::Store
    # Refresh-ahead (+refresh_ahead: 0.8+, off by default): a #fetch hit on an
    # entry past that fraction of its life returns the cached value at once
    # and queues a refresh of the key: the fetch's block runs on a thread of
    # the store's RefreshPool and its value is written with the fetch's
    # options, as a fetch miss would, so a key that keeps being read never
    # expires.
    #
    # An entry's life runs from when this process stored it (its write, its
    # fill from L2, or the write's arrival over the bus) to its expiry; the
    # native read tells whether it is due along with the hit, on the
    # +Time.now+ the expiry check reads anyway. Entries that never expire are
    # never refreshed, nor a fetch with +expires_at:+ (its entry is meant to
    # end then), nor a forced one.
    #
    # Once across processes: a refresh claims the key's lease (see
    # FetchLease) and leaves the key alone when another process holds it —
    # that process's value arrives by the bus. Once within a process: the
    # pool runs one refresh per key at a time and turns down what it has no
    # room for; the next hit offers again. When the bus cannot settle the
    # lease (sync off, leases off, the bus down) the refresh runs without
    # one, as a fetch would. Just before running the block the refresh looks
    # again: an entry no longer due (another process refreshed it) or gone
    # (deleted, invalidated, expired) is left as it is.
    #
    # A block that raises is counted (refresh_ahead_errors) and otherwise
    # ignored: the entry stays as it was and expires as it would have, so a
    # fetch after that runs the block itself, and fail-safe (if on) works as
    # without refresh-ahead. Every refresh sends
    # <tt>cache_refresh_ahead.active_support</tt>, with +outcome+
    # (:refreshed, :behind — another process holds the lease — or :current).
    module RefreshAhead
      # Returned by the native read for a hit whose entry is due for a
      # refresh (see Node#read_hit_unless_due).
      DUE = Object.new.freeze
      private_constant :DUE

      # What each outcome of a refresh counts as (RefreshPool::COUNTERS).
      # (:stopped: the block returned after the pool stopped, see RefreshPool#guard.)
      COUNTED_AS = { refreshed: :refreshes_ahead, behind: :refresh_ahead_skipped,
                     current: :refresh_ahead_skipped, stopped: :refresh_ahead_skipped }.freeze
      private_constant :COUNTED_AS

      # Counters of Store#stats, with refreshes_ahead, refresh_ahead_skipped
      # and refresh_ahead_errors (see RefreshPool::COUNTERS).
      def stats
        @refresh_pool.add_stats(super)
      end

      private

      # The store's +refresh_ahead:+ setting, checked (ConfigurationError).
      def start_refresh_ahead(setting)
        @refresh_ahead = refresh_fraction_or_off(setting, ConfigurationError)
        @refresh_pool = RefreshPool.new
      end

      # The direct path's read of +key+ for a fetch: the value or MISS, and,
      # when the entry is due, its refresh queued first.
      def read_hit_refreshing(name, key, options, &)
        # The direct path never has force: only these keys change the store's fraction.
        special = options && (options.key?(:refresh_ahead) || options.key?(:expires_at))
        fraction = special ? refresh_fraction(options) : @refresh_ahead
        return @node.read_hit(key, nil, MISS) unless fraction

        value = @node.read_hit_unless_due(key, nil, MISS, DUE, fraction)
        return value unless DUE.equal?(value)

        refresh_in_background(name, key, nil, merged_options(options), fraction, &)
        @node.read_hit(key, nil, MISS)
      end

      # After a fetch on ActiveSupport's path: queues the refresh of the
      # entry it was answered from, when that is due. (An entry the fetch
      # has just computed or filled is not.)
      def refresh_if_due(name, call_options, &)
        # Judged on the call's own options: merging turns expires_at: into
        # an expires_in.
        fraction = refresh_fraction(call_options)
        return unless fraction

        options = merged_options(call_options)

        key = normalize_key(name, options)
        version = normalize_version(name, options)
        return unless @node.refresh_due?(key, version, fraction)

        refresh_in_background(name, key, version, options, fraction, &)
      end

      # The call's fraction, or nil when it does not refresh ahead: off on
      # the store or for the call, a forced fetch, or one with +expires_at:+.
      def refresh_fraction(options)
        return @refresh_ahead unless options
        return if options[:force] || options[:force_miss] || options[:expires_at]
        return @refresh_ahead unless options.key?(:refresh_ahead)

        refresh_fraction_or_off(options[:refresh_ahead], ArgumentError)
      end

      # +refresh_ahead+ as a Float, or nil for nil and false.
      def refresh_fraction_or_off(setting, error)
        return unless setting
        return setting.to_f if setting.is_a?(Numeric) && setting.positive? && setting < 1

        raise error, "refresh_ahead: must be a fraction of an entry's life, more than 0 and less than 1 " \
                     "(e.g. 0.8), nil or false (got #{setting.inspect})"
      end

      # Offers the pool the refresh of +key+ by the fetch's block: written
      # with the fetch's options, as a forced fetch (it computes, waits for
      # nobody, and leads the key's flight so that this process's misses of
      # the key wait for it).
      #
      # A Proc namespace is resolved here, on the fetch's thread: the pool's
      # thread runs without the request's state (Current attributes, the
      # tenant), and the refresh must write the key the fetch read.
      def refresh_in_background(name, key, version, options, fraction, &)
        options = options.merge(force: true, refresh_ahead: false)
        options[:namespace] = options[:namespace].call if options[:namespace].respond_to?(:call)
        compute = @refresh_pool.guard(proc(&), :stopped)
        @refresh_pool.offer(key) do
          COUNTED_AS.fetch(catch(:stopped) { refreshed_ahead(name, key, version, options, fraction, &compute) })
        end
      end

      # Runs on a pool thread: one refresh, reported as
      # <tt>cache_refresh_ahead</tt>; its outcome.
      def refreshed_ahead(name, key, version, options, fraction, &)
        in_application do
          instrument(:refresh_ahead, name, options) do |payload|
            outcome = refresh(name, key, version, options, fraction, &)
            payload[:outcome] = outcome if payload
            outcome
          end
        end
      rescue ClosedError
        # The store closed while the refresh waited: nothing to refresh.
        :current
      end

      def refresh(name, key, version, options, fraction, &)
        # The node the lease is claimed on releases it, even if the store
        # closes meanwhile.
        node = bus_node
        claim = refresh_claim(key, options)
        return :behind if claim == :behind
        # Refreshed by another process (its release came before this claim on
        # the bus, so its write did too), or removed meanwhile.
        return :current unless @node.refresh_due?(key, version, fraction)

        hook_arguments = ActiveSupportVersions::FETCH_HOOK_TAKES_KEY ? [key, options] : [options]
        save_block_result_to_cache(name, *hook_arguments, &)
        :refreshed
      ensure
        node.release_lease(key, claim) if claim.is_a?(Integer)
      end

      # Claims +key+'s lease for a refresh: the claim (to release), :behind
      # when another process holds the key, or nil when there is no lease to
      # be had (leases off, no bus, the bus down or undecided).
      def refresh_claim(key, options)
        seconds = lease_seconds(options)
        # FetchLease's claims take [key, version]; leases are per key.
        claim = seconds && claim_lease([key], seconds)
        return unless claim

        case decided(key, claim)
        when :won then @lease_counts.bump(:lease_won)
        when :undecided then @lease_counts.bump(:lease_undecided)
        when :behind
          @node.release_lease(key, claim)
          return :behind
        end
        claim
      end

      # Where +claim+ stands once its echo is back (or the bus gave up on
      # it, within health_timeout), waiting in short slices.
      def decided(key, claim)
        loop do
          standing = @node.lease_decision(key, claim, Lifecycle::WAIT_SLICE)
          return standing unless standing == :waiting
        end
      end

      # Runs the block inside the Rails application's executor when there is
      # one, as Rails asks of work on threads of one's own (connections,
      # CurrentAttributes, reloading).
      def in_application(&)
        application = ::Rails.application if defined?(::Rails) && ::Rails.respond_to?(:application)
        application ? application.executor.wrap(&) : yield
      end
    end
  end
end
