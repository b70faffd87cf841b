# frozen_string_literal: true

module SyncedMemoryStore
  class Store < ActiveSupport::Cache::Store
    # When a call may skip ActiveSupport's general path: a plain String key
    # with nobody listening (no event subscriber, no debug logger) needs no
    # key normalization, instrumentation or Entry object, so a hit is one L1
    # lookup and one decode. Every other call takes ActiveSupport's path.
    module DirectPath
      UTF8 = Encoding::UTF_8
      private_constant :UTF8

      EVENTS = Hash.new { |events, operation| events[operation] = "cache_#{operation}.active_support".freeze }
      private_constant :EVENTS

      private

      # The L1 key for a direct read, or nil when the call needs ActiveSupport's
      # general path: a key that is not a plain non-empty String, a version, a
      # per-call or Proc namespace, race_condition_ttl, force, or a key longer
      # than ActiveSupport 8.1's max_key_size (which normalize_key hashes).
      def direct_key(name, options)
        return unless name.instance_of?(String) && !name.empty? && !@entry_coder && name.encoding.equal?(UTF8)
        return if options && (options.key?(:namespace) || shapes_reads?(options))

        stored_key(name)
      end

      # +name+ as a key under the store's own options (every hit asks, so the
      # test of #shapes_reads? is made here without another call, and a store
      # with no namespace and no key size limit answers at once).
      def stored_key(name)
        options = @options
        return if options[:force] || options[:force_miss] || options[:race_condition_ttl] || options[:version]

        namespace = options[:namespace]
        return name unless namespace || @max_key_size

        key = namespaced(name, namespace)
        key unless key.nil? || (@max_key_size && key.bytesize > @max_key_size)
      end

      def namespaced(name, namespace)
        return name unless namespace
        return unless namespace.is_a?(String)

        "#{namespace}:#{name}"
      end

      # The normalized key and version of +name+ under merged +options+, skipping
      # ActiveSupport's normalization for a plain String key, which it would not
      # change.
      def key_and_version(name, options)
        key = direct_key(name, options.equal?(@options) ? nil : options)
        key ? [key, nil] : [normalize_key(name, options), normalize_version(name, options)]
      end

      def shapes_reads?(options)
        options[:force] || options[:force_miss] || options[:race_condition_ttl] || options[:version]
      end

      # True when nobody listens to the operation's event and no debug logger
      # would log it, so skipping ActiveSupport's instrumentation changes nothing.
      def quiet?(operation)
        !(logger&.debug? && !silence?) && !ActiveSupport::Notifications.notifier.listening?(EVENTS[operation])
      end
    end
  end
end
