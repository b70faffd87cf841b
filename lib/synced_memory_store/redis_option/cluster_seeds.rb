# frozen_string_literal: true

require "uri"

module SyncedMemoryStore
  module RedisOption
    # The +cluster:+ part of the +redis:+ option, as redis-rb takes it: the
    # nodes to ask where the channel lives, each a URL
    # (<tt>"redis://host:port"</tt>, <tt>"rediss://user:pass@host:port"</tt>),
    # a <tt>"host:port"</tt> String or a Hash with +host+ and +port+. The
    # native bus gets them as <tt>"host:port"</tt> Strings; credentials and
    # TLS come from the rest of the option, or else from the first URL.
    module ClusterSeeds
      module_function

      # +parts+ (the other connection parts, normalized) with +cluster:+
      # added for +nodes+.
      def merge(parts, nodes)
        unless nodes.is_a?(Array) && !nodes.empty?
          raise ConfigurationError, "redis: cluster: must be a non-empty Array of nodes (got #{nodes.inspect})"
        end

        urls = nodes.select { |node| node.is_a?(String) && node.include?("://") }
        parts = { url: urls.first }.merge(parts) unless urls.empty? || parts.key?(:url)
        parts.merge(cluster: nodes.map { |node| seed(node) })
      end

      def seed(node)
        case node
        when Hash then host_port(node.transform_keys(&:to_sym).values_at(:host, :port), node)
        when %r{\A\w+://} then from_url(node)
        when String then host_port(node.split(/:(?=\d+\z)/), node)
        else invalid(node)
        end
      end

      def from_url(url)
        uri = URI(url)
        host_port([uri.hostname, uri.port], url)
      rescue URI::InvalidURIError
        invalid(url)
      end

      def host_port((host, port), node)
        invalid(node) if host.to_s.empty? || !port.to_s.match?(/\A\d+\z/)
        "#{host}:#{port}"
      end

      def invalid(node)
        shown = node.is_a?(String) ? node.sub(%r{//[^@/]*@}, "//[credentials]@") : node.inspect
        raise ConfigurationError, "redis: cluster: each node is a URL, \"host:port\" or { host:, port: } (got #{shown})"
      end
    end
  end
end
