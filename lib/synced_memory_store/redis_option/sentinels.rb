# frozen_string_literal: true

module SyncedMemoryStore
  module RedisOption
    # The Sentinel part of the +redis:+ option, as redis-rb 4.8 takes it
    # (<tt>sentinels: [{ host:, port: }, …]</tt>, the primary's name as
    # +name:+ or as the host of <tt>url: "redis://mymaster"</tt>, +role:+) and
    # as redis-client does (+sentinel_username:+, +sentinel_password:+), a
    # sentinel also as a <tt>"redis://host:port"</tt> String. The native side
    # checks the values (see +bus/sentinel.rs+); here they only take its shape.
    module Sentinels
      # What a Sentinel setup adds to RedisOption::PARTS.
      PARTS = %i[sentinels name role sentinel_username sentinel_password].freeze

      # Keys of one sentinel's Hash.
      KEYS = %i[url host port username password].freeze

      module_function

      # +base+ with the Sentinel parts of +hash+ (symbol keys), if it has sentinels.
      def merge(base, hash)
        hash[:sentinels].nil? ? base : base.merge(parts(hash))
      end

      # The Sentinel parts of +hash+ (symbol keys), for the native side.
      def parts(hash)
        sentinels = hash[:sentinels]
        unless sentinels.is_a?(Array)
          raise ConfigurationError, "redis: sentinels: must be an Array of Hashes or URLs (got #{sentinels.class})"
        end

        parts = hash.slice(:name, :sentinel_username, :sentinel_password).compact
        parts[:role] = hash[:role].to_s if hash[:role]
        parts[:sentinels] = sentinels.each_with_index.map { |sentinel, index| entry(sentinel, index) }
        parts
      end

      # One sentinel as a Hash of KEYS.
      def entry(sentinel, index)
        case sentinel
        when String then { url: sentinel }
        when Hash
          entry = sentinel.transform_keys(&:to_sym)
          unknown = entry.keys - KEYS
          unless unknown.empty?
            raise ConfigurationError,
                  "redis: sentinels[#{index}] has unknown keys #{unknown.map(&:inspect).join(", ")} " \
                  "(expected #{KEYS.map(&:inspect).join(", ")})"
          end
          entry.compact
        else
          raise ConfigurationError, "redis: sentinels[#{index}] must be a Hash or a URL String (got #{sentinel.class})"
        end
      end

      # The option Hash a redis-client RedisClient::SentinelConfig was made
      # from: its sentinels (each a RedisClient::Config), the primary's name
      # and role, and the primary's credentials, database and TLS. It keeps
      # the name and role in instance variables only.
      def from_config(config)
        sentinels = config.sentinels.map do |sentinel|
          { host: sentinel.host, port: sentinel.port, username: sentinel.username, password: sentinel.password }
        end
        parts = { sentinels: sentinels, name: config.instance_variable_get(:@name),
                  role: config.instance_variable_get(:@role), db: config.db, username: config.username,
                  password: config.password, ssl: config.ssl ? true : false }
        parts[:ssl_params] = config.ssl_params if config.ssl
        parts.compact
      end
    end
  end
end
