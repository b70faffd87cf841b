# frozen_string_literal: true

module SyncedMemoryStore
  class Store < ActiveSupport::Cache::Store
    # The store's own options (the ActiveSupport ones are ActiveSupport's):
    # which exist, their defaults, how they reach the native node, and the
    # per-call options kept from the original gem.
    module Options
      # Options of the bus, passed to the native core as given.
      BUS_OPTIONS = %i[channel secret broadcast_max_bytes queue_capacity health_interval health_timeout
                       reconnect_max wire_format bus_log].freeze

      # Options consumed by this store; the others are ActiveSupport's.
      STORE_OPTIONS = (%i[cache redis size sync l1_expires_in lock_timeout lease fail_safe refresh_ahead] +
                       BUS_OPTIONS).freeze

      # Default L1 byte budget.
      DEFAULT_SIZE = 32 * 1024 * 1024

      private

      # The native node's options for the store's settings.
      def node_options(settings)
        { size: settings.fetch(:size, DEFAULT_SIZE), l1_expires_in: settings[:l1_expires_in],
          bus: bus_options(settings) }
      end

      # The native bus options for the store's settings, or nil with sync off.
      def bus_options(settings)
        sync = settings.fetch(:sync, true)
        unless [true, false].include?(sync)
          raise ConfigurationError, "sync: must be true or false (got #{sync.inspect})"
        end
        return unless sync

        options = settings.slice(*BUS_OPTIONS).compact
        options[:secret] = secrets(options[:secret]) if options.key?(:secret)
        options[:redis] = RedisOption.normalize(settings[:redis])
        options
      end

      # +secret:+ as the native side takes it: a String, or several (the
      # first signs, any verifies: rotate by deploying [new, old], then new).
      def secrets(secret)
        secret.is_a?(Array) ? secret.map(&:to_s) : secret.to_s
      end

      # The coder L1 and the bus use for whole entries, or nil for the native
      # encoding: +coder:+ as given (nil: native), or the coder ActiveSupport
      # 7.1+ built from +serializer:+ and +compressor:+.
      def entry_coder(options)
        if options.key?(:coder)
          coder = options[:coder]
          return if coder.nil?
          return coder if coder.respond_to?(:dump) && coder.respond_to?(:load)

          raise ConfigurationError, "coder: must respond to dump and load (got #{coder.inspect})"
        end
        return unless ActiveSupportVersions::SERIALIZER_OPTIONS

        @coder if options.key?(:serializer) || options.key?(:compressor)
      end

      # Adds +force_miss+ (force) and, on ActiveSupport < 7.1, +expires_at+
      # (converted to expires_in as 7.1 does) to ActiveSupport's merging.
      def merged_options(call_options)
        options = super
        options = options.merge(force: true) if options[:force_miss] && !options[:force]
        if options.key?(:expires_at)
          expires_at = options[:expires_at]
          options = options.except(:expires_at)
          options[:expires_in] = expires_at.to_f - Time.now.to_f if expires_at
        end
        options
      end

      # Whether a change is told to the other processes (not <tt>silent: true</tt>).
      def publish?(options)
        !options[:silent]
      end
    end
  end
end
