# frozen_string_literal: true

require "securerandom"

module SyncedMemoryStore
  class Store < ActiveSupport::Cache::Store
    # Tags: <tt>write(key, value, tags: ["user:1", "org:7"])</tt> (and
    # +fetch+, +write_multi+, +fetch_multi+ with +tags:+), and
    # #invalidate_tags, which makes every entry carrying one of the tags a
    # miss, in every process and in L2.
    #
    # A tag's version is an entry of its own, under TAG_KEY_PREFIX and the
    # tag (in the call's namespace): a random String, written to L2 and
    # shipped to every L1 like any other entry. A tagged entry records the
    # versions its tags had when it was written (see Tagged); a read compares
    # them with the tags' versions now, from L1 or else from L2, and is a
    # miss when one moved or is gone. #invalidate_tags writes a new random
    # version, so nothing is deleted or scanned, and a version that went
    # missing (evicted, deleted by a pattern or a clear) makes the entries
    # that recorded it misses: a later version is new, never an old one
    # again. A tag's version is thus exactly as coherent as any key
    # (propagation, fills guarded against changes, the trust lease), and a
    # tagged entry is current only while every version it recorded is.
    module Tags
      # Prefix of the keys that hold tag versions (within the namespace).
      TAG_KEY_PREFIX = "synced_memory_store:tag:"

      # Where an entry read unwrapped keeps the versions it recorded, so that
      # ActiveSupport writing it back (race_condition_ttl) writes them again.
      RECORDED = :@synced_memory_store_tag_versions
      private_constant :RECORDED

      # Makes every entry written with any of +tags+ (Strings, or Arrays of
      # them) a miss, here, in every other process and in L2, by giving each
      # tag a new version. Entries written later with the tags are hits
      # again. Options: +namespace+ (the tags' namespace, as for keys),
      # +silent+ and +persist+ as for #write. Returns true.
      def invalidate_tags(*tags)
        options = merged_options(tags.extract_options!)
        keys = tag_keys(tags.flatten, options)
        raise ArgumentError, "invalidate_tags needs at least one tag" if keys.empty?

        instrument(:invalidate_tags, tags.flatten) do
          version_options = tag_version_options(options)
          keys.each { |key| store_value(key, new_tag_version, nil, nil, version_options) }
        end
        true
      end

      private

      # The keys of +tags+ (a String, an Array of Strings, or nil) in the
      # call's namespace; raises ArgumentError for anything else.
      def tag_keys(tags, options)
        check_tags(tags)
        Array(tags).map { |tag| normalize_key("#{TAG_KEY_PREFIX}#{tag}", options) }
      end

      # Raises ArgumentError unless +tags+ is a tags: option a write takes.
      def check_tags(tags)
        return if tags.nil? || (tags.instance_of?(String) && !tags.empty?)
        return if tags.is_a?(Array) && tags.all? { |tag| tag.is_a?(String) && !tag.empty? }

        raise ArgumentError, "tags: must be a String or an Array of non-empty Strings (got #{tags.inspect})"
      end

      # The value a write stores in place of +value+ (and of +entry+, which
      # is then not used), or nil when it stores +value+ as it is: wrapped
      # with the versions its tags have now (or, for an entry ActiveSupport
      # writes back, the ones it was read with); an untagged value that has
      # the wrapped form wrapped with none, so that it reads back as itself.
      # A write without tags: costs a Hash lookup and a class check here.
      def tagged_for_write(value, entry, options)
        versions = entry&.instance_variable_get(RECORDED)
        versions ||= versions_for_write(options) unless options[:tags].nil?
        return unless versions || (value.instance_of?(Array) && Tagged.tagged?(value))

        Tagged.wrap(value, versions || {})
      end

      # write_multi_entries' +entries+, wrapped as #tagged_for_write does.
      def tagged_entries(entries, options)
        versions = versions_for_write(options)
        return entries unless versions || entries.each_value.any? { |entry| Tagged.tagged?(entry.value) }

        entries.transform_values do |entry|
          build_entry(Tagged.wrap(entry.value, versions || {}), entry.version, entry.expires_at)
        end
      end

      # <tt>{ tag_key => version }</tt> for the call's tags, or nil without.
      # A tag without a version gets one (unless another writer's comes
      # first). A version that cannot be had is recorded as a fresh one no
      # tag holds, so the entry reads as a miss: never as nil.
      def versions_for_write(options)
        tags = options[:tags]
        return if tags.nil? || (tags.is_a?(Array) && tags.empty?)
        raise ArgumentError, "tags: cannot be combined with raw: true" if options[:raw]

        tag_keys(tags, options).to_h do |key|
          version = current_tag_version(key)
          unless version
            fresh = new_tag_version
            created = store_value(key, fresh, nil, nil, tag_version_options(options).merge(unless_exist: true))
            version = (current_tag_version(key) unless created) || fresh
          end
          [key, version]
        end
      end

      # +value+ as a read returns it: the value inside a wrapped one whose
      # tags all still have the versions it recorded, MISS when one does
      # not; any other value as it is.
      def untagged(value)
        return value unless Tagged.tagged?(value)

        Tagged.versions(value).each do |key, version|
          return MISS if version.nil? || version != current_tag_version(key)
        end
        Tagged.value(value)
      end

      # +entry+ as a read returns it (see #untagged): nil for a tagged entry
      # that is no longer current.
      def untagged_entry(entry)
        wrapped = entry.value
        return entry unless Tagged.tagged?(wrapped)

        value = untagged(wrapped)
        return if MISS.equal?(value)

        build_entry(value, entry.version, entry.expires_at).tap do |unwrapped|
          unwrapped.instance_variable_set(RECORDED, Tagged.versions(wrapped))
        end
      end

      # The version the tag under +key+ has now, from L1, else from L2 (which
      # fills L1); nil when it has none.
      def current_tag_version(key)
        version = @entry_coder ? MISS : @node.read_hit(key, nil, MISS)
        if MISS.equal?(version)
          entry, = l1_or_l2_entry(key, {})
          version = entry.value if entry && !entry.expired?
        end
        version if version.is_a?(String)
      end

      # A tag version's options: the call's namespace and its silent and
      # persist, never an expiry (the store's expires_in would end every
      # tagged entry with it).
      def tag_version_options(options)
        options.except(:tags, :version, :race_condition_ttl, :raw, :unless_exist, :expires_at)
               .merge(expires_in: nil)
      end

      def new_tag_version
        SecureRandom.hex(10)
      end
    end
  end
end
