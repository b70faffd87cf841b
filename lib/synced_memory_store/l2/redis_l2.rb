# frozen_string_literal: true

module SyncedMemoryStore
  # A RedisCacheStore L2: multi-reads are one MGET, and delete_matched takes
  # Regexps too (by scanning the namespace, since Redis only matches globs).
  class RedisL2 < L2
    SCAN_BATCH = 1000

    # Redis stores raw values as Strings.
    def raw_value(value)
      value.to_s
    end

    def read_multi_entries(keys, options)
      return {} if keys.empty?

      raw = options[:raw] ? true : false
      payloads = @store.send(:failsafe, :read_multi_entries, returning: nil) do
        with_connection { |redis| redis.mget(*keys.map { |key| l2_key(key) }) }
      end
      return {} unless payloads

      keys.zip(payloads).each_with_object({}) do |(key, payload), entries|
        entry = payload && @store.send(:deserialize_entry, payload, raw: raw)
        entries[key] = entry if entry
      end
    end

    def delete_matched(pattern, glob)
      return muted { @store.delete_matched(glob) } if glob

      prefix = @store.send(:namespace_key, "", @store.options)
      @store.send(:failsafe, :delete_matched) do
        with_connection { |redis| delete_scanned(redis, prefix, pattern) }
      end
    end

    private

    def delete_scanned(redis, prefix, pattern)
      redis.scan_each(match: "#{glob_escape(prefix)}*", count: SCAN_BATCH).each_slice(SCAN_BATCH) do |l2_keys|
        doomed = l2_keys.select { |l2_key| pattern.match?(l2_key.delete_prefix(prefix)) }
        redis.del(*doomed) unless doomed.empty?
      end
    end

    def glob_escape(text)
      text.gsub(/[*?\[\]\\]/) { |char| "\\#{char}" }
    end

    # ActiveSupport 6.1/7.0 call +with+ on the client (a Redis or a
    # ConnectionPool); 7.1+ call +then+, which both answer there.
    def with_connection(&)
      client = @store.redis
      client.respond_to?(:with) ? client.with(&) : client.then(&)
    end
  end
end
