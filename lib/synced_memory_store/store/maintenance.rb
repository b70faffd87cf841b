# frozen_string_literal: true

module SyncedMemoryStore
  class Store < ActiveSupport::Cache::Store
    # What acts on many entries at once: cleanup, clear and delete_matched,
    # on both levels and, but for cleanup, in every process.
    module Maintenance
      # Removes expired entries from L1, and from L2 where the L2 supports it.
      # Returns how many L1 entries were removed.
      def cleanup(_options = nil)
        size = @node.stats[:l1_entries]
        return _instrument(:cleanup, size: size) { purge } if ActiveSupportVersions::KEYLESS_INSTRUMENT

        instrument(:cleanup, { size: size }) { purge }
      end

      # Deletes everything, from L2 too (for a RedisCacheStore without a
      # namespace that is FLUSHDB, as it is for RedisCacheStore#clear). Every
      # L1 is cleared even when the L2 call raises, since it may have cleared
      # part of L2 first.
      def clear(options = nil)
        node = bus_node
        begin
          @l2&.clear
        ensure
          node.clear(publish: publish?(options || {}))
        end
        true
      end

      # Deletes the keys matching +matcher+: a Regexp, or a String that is a
      # Redis-style glob (<tt>*</tt>, <tt>?</tt>, <tt>[abc]</tt>, backslash
      # escapes, matched byte by byte as Redis does), both applied within the
      # namespace. Every L1 drops the matches even when the L2 call raises.
      # Returns how many entries this process's L1 dropped.
      def delete_matched(matcher, options = nil)
        unless matcher.is_a?(Regexp) || matcher.is_a?(String)
          raise ArgumentError, "delete_matched takes a Regexp or a glob String (got #{matcher.inspect})"
        end

        options = merged_options(options)
        instrument(:delete_matched, matcher.inspect) do
          node = bus_node
          glob = namespace_key(matcher, options) if matcher.is_a?(String)
          pattern = glob ? Glob.to_regexp(glob) : key_matcher(matcher, options)
          begin
            @l2&.delete_matched(pattern, glob)
          ensure
            removed = delete_matched_in_l1(node, pattern, glob, publish?(options))
          end
          removed
        end
      end

      private

      # Entries expired less than fail-safe's max_stale ago stay in L1.
      def purge
        removed = @node.purge_expired(Time.now.to_f - (@fail_safe&.max_stale || 0))
        @l2&.cleanup
        removed
      end

      # Other processes match a glob natively; a Regexp they cannot run without
      # Ruby, so it makes them drop everything (they refill from L2).
      def delete_matched_in_l1(node, pattern, glob, publish)
        if glob
          node.delete_glob(glob, publish: publish)
        else
          node.delete_selected(publish: publish) { |key| pattern.match?(key.scrub) }
        end
      end
    end
  end
end
