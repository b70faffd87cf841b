# frozen_string_literal: true

require_relative "redis_option/cluster_seeds"
require_relative "redis_option/sentinels"

module SyncedMemoryStore
  # Turns the store's +redis:+ option into the Hash of connection parts the
  # native bus takes: a URL String (<tt>redis://</tt>, <tt>rediss://</tt>,
  # <tt>unix://</tt>), a Hash (+url+, +host+, +port+, +path+, +db+,
  # +username+, +password+, +ssl+, +ssl_params+; for Sentinel also
  # +sentinels+, +name+, +role+, +sentinel_username+, +sentinel_password+), or
  # a redis-rb / redis-client object whose connection settings are read. Only
  # settings are read from a client object; the bus opens connections of its own.
  module RedisOption
    # Where the bus connects when neither +redis:+ nor REDIS_URL says otherwise.
    DEFAULT_URL = "redis://127.0.0.1:6379/0"

    PARTS = %i[url host port path db username password ssl ssl_params].freeze

    # Client options that say nothing about where Redis is (timeouts, drivers,
    # reconnect policy): accepted and ignored, so a redis-rb options Hash works.
    IGNORED = %i[
      scheme timeout connect_timeout read_timeout write_timeout driver id tcp_keepalive reconnect_attempts
      reconnect_delay reconnect_delay_max inherit_socket logger role _parsed protocol custom middlewares
      circuit_breaker command_builder client_implementation name replica fixed_hostname
    ].freeze

    module_function

    # The Hash for +value+ (see the module documentation).
    def normalize(value)
      case value
      when nil then { url: env_url }
      when String then { url: value }
      when Hash then from_hash(value)
      else from_client(value)
      end
    end

    def env_url
      url = ENV.fetch("REDIS_URL", "")
      url.empty? ? DEFAULT_URL : url
    end

    def from_hash(hash)
      hash = hash.transform_keys(&:to_sym)
      check_keys(hash)
      parts = hash.slice(*PARTS).compact
      tls = parts.delete(:ssl_params)
      parts[:ssl] = parts[:ssl] ? true : false if parts.key?(:ssl)
      parts.merge!(tls_parts(tls)) if tls
      hash.key?(:cluster) ? ClusterSeeds.merge(parts, hash[:cluster]) : Sentinels.merge(parts, hash)
    end

    # Refuses what is no option here, and sentinels with a cluster.
    def check_keys(hash)
      if hash[:sentinels] && hash[:cluster]
        raise ConfigurationError, "redis: sentinels: and cluster: exclude each other"
      end

      unknown = hash.keys - PARTS - IGNORED - Sentinels::PARTS - %i[cluster]
      return if unknown.empty?

      raise ConfigurationError,
            "redis: unknown option#{"s" if unknown.size > 1} #{unknown.map(&:inspect).join(", ")} " \
            "(expected #{(PARTS + Sentinels::PARTS).map(&:inspect).join(", ")})"
    end

    # redis-rb 4 (Redis#_client.options), redis-rb 5 (Redis#_client.config,
    # a RedisClient::Config) and redis-client (RedisClient#config).
    def from_client(client)
      inner = client.respond_to?(:_client) ? client._client : client
      if inner.respond_to?(:config) && inner.config.respond_to?(:host)
        from_config(inner.config)
      elsif inner.respond_to?(:options) && inner.options.is_a?(Hash)
        from_hash(inner.options.except(:url))
      else
        raise ConfigurationError,
              "redis: must be a URL String, a Hash or a Redis client (got #{client.class}: #{client.inspect[0, 80]})"
      end
    end

    def from_config(config)
      # Before #host, which a SentinelConfig answers by asking the sentinels.
      return from_hash(Sentinels.from_config(config)) if config.respond_to?(:sentinel?) && config.sentinel?

      parts = { host: config.host, port: config.port, path: config.path, db: config.db, password: config.password,
                ssl: config.ssl ? true : false }
      parts[:username] = config.username if config.respond_to?(:username)
      from_hash(parts.merge(ssl_params: config.ssl ? config.ssl_params : nil).compact)
    end

    # ssl_params as redis-rb takes them (OpenSSL objects or file names), or
    # PEM text (as an environment variable may hold it), as PEM. Settings the
    # bus cannot honour (ca_path, cert_store, verify_hostname: false …) are
    # refused rather than ignored: ignored, they would fail every connection
    # later with a cause that points elsewhere.
    def tls_parts(params)
      params = params.transform_keys(&:to_sym)
      check_tls_params(params)
      parts = {}
      parts[:ca_pem] = pem(params[:ca_file], "ca_file") if params[:ca_file]
      parts[:cert_pem] = pem(params[:cert], "cert") if params[:cert]
      parts[:key_pem] = pem(params[:key], "key") if params[:key]
      if params.key?(:verify_mode)
        require "openssl"
        parts[:verify] = params[:verify_mode] != OpenSSL::SSL::VERIFY_NONE
      end
      parts
    end

    # The ssl_params the bus honours (verify_hostname only as true: the host
    # name is always checked when the certificate is).
    TLS_PARAMS = %i[ca_file cert key verify_mode verify_hostname].freeze

    # Raises ConfigurationError for ssl_params the bus cannot honour.
    def check_tls_params(params)
      unknown = params.keys - TLS_PARAMS
      unless unknown.empty?
        raise ConfigurationError,
              "redis: ssl_params #{unknown.map(&:inspect).join(", ")} #{unknown.size > 1 ? "are" : "is"} " \
              "not supported (supported: :ca_file, :cert, :key, :verify_mode)"
      end
      return unless params[:verify_hostname] == false

      raise ConfigurationError,
            "redis: ssl_params verify_hostname: false is not supported (the host name is checked " \
            "unless verify_mode: OpenSSL::SSL::VERIFY_NONE)"
    end

    # PEM of an OpenSSL object, of PEM text, or of the file a String names.
    # Never shows the value: it may be a private key.
    def pem(object, name)
      return object.to_pem if object.respond_to?(:to_pem)
      unless object.is_a?(String)
        raise ConfigurationError, "redis: ssl_params #{name} must be a PEM file name, PEM text or an OpenSSL object"
      end
      return object.b if object.include?("-----BEGIN ")

      read_pem(object, name)
    end

    # The bytes of the file +path+ names, for the ssl_params +name+.
    def read_pem(path, name)
      File.binread(path)
    rescue SystemCallError, ArgumentError => e
      # The message of the error alone: Ruby's adds the path, which may be
      # something that was never meant as one.
      reason = e.is_a?(SystemCallError) ? e.class.new.message : e.message
      shown = path.bytesize > 200 || path.match?(/[\n\0]/) ? "(neither a file name nor PEM text)" : path
      raise ConfigurationError, "redis: ssl_params #{name} #{shown} cannot be read (#{reason})"
    end
  end
end
