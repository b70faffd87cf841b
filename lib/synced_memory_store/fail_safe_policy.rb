# frozen_string_literal: true

module SyncedMemoryStore
  # The settings of +fail_safe:+, checked: how long past its expiry an entry
  # may still be served when refreshing it fails (+max_stale+, seconds), and
  # how long a key whose refresh failed is served stale before its block is
  # tried again (+backoff+, seconds).
  class FailSafePolicy
    # Default +backoff+ (seconds): a failing backend is asked once per key
    # and process in this time, and a recovered one is noticed within it.
    DEFAULT_BACKOFF = 5.0

    KEYS = %i[max_stale backoff].freeze
    private_constant :KEYS

    attr_reader :max_stale, :backoff

    # The policy +value+ asks for, or nil for off (nil, false). For the
    # store's option +base+ is nil and a Hash with +max_stale+ is required;
    # per call (+base+ the store's policy) +true+ means the store's, and a
    # Hash changes some of its settings. Raises +error+ naming the option.
    def self.parse(value, error, base = nil)
      return if value.nil? || value == false
      return base if value == true && base

      unless value.is_a?(Hash) && (value.keys - KEYS).empty?
        raise error, "fail_safe: must be false, nil or { max_stale:, backoff: } (got #{value.inspect})"
      end

      new(seconds(value.fetch(:max_stale) { base&.max_stale }, :max_stale, error, positive: true),
          seconds(value.fetch(:backoff) { base ? base.backoff : DEFAULT_BACKOFF }, :backoff, error))
    end

    def self.seconds(value, name, error, positive: false)
      unless value.is_a?(Numeric) && (positive ? value.positive? : value >= 0)
        raise error, "fail_safe: #{name}: must be a number of seconds (#{positive ? "more than 0" : "0 or more"}; " \
                     "got #{value.inspect})"
      end

      value.to_f
    end
    private_class_method :seconds

    def initialize(max_stale, backoff)
      @max_stale = max_stale
      @backoff = backoff
    end

    # Whether +entry+ may be served by fail-safe at +now+ (seconds since the
    # epoch): it has not expired, or expired at most +max_stale+ ago.
    def covers?(entry, now = Time.now.to_f)
      expires_at = entry.expires_at
      expires_at.nil? || now - expires_at <= @max_stale
    end
  end
end
