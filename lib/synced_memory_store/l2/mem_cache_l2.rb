# frozen_string_literal: true

module SyncedMemoryStore
  # A MemCacheStore L2: multi-reads are one get_multi.
  class MemCacheL2 < L2
    # Memcached stores raw values as Strings.
    def raw_value(value)
      value.to_s
    end

    def read_multi_entries(keys, options)
      return {} if keys.empty?

      by_l2_key = keys.to_h { |key| [l2_key(key), key] }
      payloads = @store.send(:rescue_error_with, nil) do
        @store.instance_variable_get(:@data).with { |client| client.get_multi(by_l2_key.keys, options) }
      end
      return {} unless payloads

      payloads.each_with_object({}) do |(l2_key, payload), entries|
        entry = deserialize(payload, options)
        entries[by_l2_key.fetch(l2_key)] = entry if entry
      end
    end

    def delete_matched(_pattern, _glob)
      muted { @store.delete_matched(nil) }
    end

    private

    # 6.1 takes the payload alone; 7.0+ also take raw:.
    def deserialize(payload, options)
      if @store.method(:deserialize_entry).arity == 1
        @store.send(:deserialize_entry, payload)
      else
        @store.send(:deserialize_entry, payload, raw: options[:raw] ? true : false)
      end
    end
  end
end
