# frozen_string_literal: true

module SyncedMemoryStore
  # Redis glob patterns, the kind RedisCacheStore#delete_matched takes, matched
  # exactly as Redis 7 matches them (its +stringmatchlen+, case-sensitive), so
  # that a delete_matched drops the same keys from a Redis L2, from this
  # process's L1 and from every other process's L1 (which match natively).
  #
  # Patterns and keys are compared as bytes, whatever their encodings:
  # <tt>?</tt> is one byte, so <tt>user:??</tt> matches <tt>user:é</tt>.
  # <tt>*</tt> is any run of bytes; <tt>[abc]</tt>, <tt>[a-z]</tt> (or
  # <tt>[z-a]</tt>) and <tt>[^abc]</tt> are one byte of a class; a backslash
  # makes the next byte literal, a trailing one is itself. As in Redis, a
  # <tt>[</tt> never closed makes a class of the rest of the pattern
  # (<tt>user:[ab</tt> matches <tt>user:a</tt>), <tt>]</tt> right after
  # <tt>[</tt> closes an empty class, range ends compare as signed bytes, the
  # empty key matches only the patterns <tt>""</tt> and <tt>*</tt>, and a
  # pattern with more than 1000 stars before its last element matches nothing.
  # The grammar is in ext/synced_memory_store/src/glob.rs.
  #
  # Two methods are native: Glob.match?(glob, key), the matcher itself, and
  # Glob.regexp_source(glob), see Pattern.
  module Glob
    module_function

    # A Pattern for +glob+: the Regexp to give stores whose delete_matched
    # takes a Regexp (MemoryStore, FileStore).
    def to_regexp(glob)
      Pattern.new(glob)
    end

    # A Regexp that answers +match?+, +match+, <tt>=~</tt> and <tt>===</tt>
    # exactly as the glob does (byte by byte, as Redis), so that
    # ActiveSupport's MemoryStore and FileStore, whose delete_matched does
    # <tt>key.match(matcher)</tt>, and Enumerable#grep delete or pick exactly the
    # keys Redis would.
    #
    # Ruby does not call those methods everywhere: String#match? and String#=~
    # run the Regexp's +source+ directly, and stores rebuild a Regexp from it
    # (ActiveSupport does to add its +namespace:+). That source matches a
    # subset of the keys the glob matches, over valid UTF-8 keys: every
    # element that matches one byte keeps its ASCII members only (<tt>?</tt>
    # is one ASCII character, <tt>[^a]</tt> an ASCII character but
    # <tt>a</tt>), literal bytes that spell a UTF-8 character are that
    # character, <tt>*</tt> is <tt>.*</tt> (with Regexp::MULTILINE). A subset,
    # because an L2 deleting less than the L1s drop is safe (each L1 refills
    # from the L2), while an L2 deleting more would leave L1s serving what it
    # deleted. The source is anchored with <tt>\A</tt>, so the Regexp
    # ActiveSupport builds for an L2 with its own +namespace:+ matches nothing.
    #
    # Matches are not recorded in <tt>$~</tt>; +match+ returns MatchData for
    # the whole key.
    class Pattern < Regexp
      # The whole of any key, as MatchData for a match.
      WHOLE = /\A.*\z/m
      private_constant :WHOLE

      # The glob, as bytes.
      attr_reader :glob

      def initialize(glob)
        @glob = glob.b.freeze
        super(Glob.regexp_source(@glob), Regexp::MULTILINE)
      end

      # Whether +key+ (a String or Symbol; +nil+ never matches) matches the
      # glob. A +pos+ other than the start never matches, as the glob is
      # anchored there.
      def match?(key, pos = 0)
        return false if key.nil?

        key = key.to_s if key.is_a?(Symbol)
        pos += key.length if pos.negative?
        pos.zero? && Glob.match?(glob, key)
      end

      # MatchData covering the whole key when it matches, else +nil+; yields
      # it when a block is given.
      def match(key, pos = 0)
        return unless match?(key, pos)

        key = key.to_s
        data = WHOLE.match(key.valid_encoding? && key.encoding.ascii_compatible? ? key : key.b)
        block_given? ? yield(data) : data
      end

      # 0 when +key+ matches, else +nil+.
      def =~(other)
        match?(other) ? 0 : nil
      end

      # Whether +key+ is a String or Symbol that matches (for +case+ and +grep+).
      def ===(other)
        (other.is_a?(String) || other.is_a?(Symbol)) && match?(other)
      end

      # Patterns are equal when their globs are: different globs can share a
      # source.
      def ==(other)
        other.is_a?(Pattern) && other.glob == glob
      end
      alias eql? ==

      def hash
        [Pattern, glob].hash
      end
    end
  end
end
