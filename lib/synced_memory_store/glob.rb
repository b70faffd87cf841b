# frozen_string_literal: true

module SyncedMemoryStore
  # Redis-style glob patterns, the kind RedisCacheStore#delete_matched takes,
  # turned into anchored Regexps so L1 and non-Redis L2s can match them too.
  #
  # <tt>*</tt> matches any run of characters, <tt>?</tt> any one character,
  # <tt>[abc]</tt>, <tt>[a-z]</tt> and <tt>[^abc]</tt> a character class, and a
  # backslash makes the next character literal. An unclosed <tt>[</tt> is literal.
  module Glob
    module_function

    # The Regexp matching exactly the Strings +glob+ matches.
    def to_regexp(glob)
      chars = glob.chars
      source = +"\\A"
      index = 0
      while index < chars.length
        piece, index = translate(chars, index)
        source << piece
      end
      Regexp.new(source << "\\z", Regexp::MULTILINE)
    end

    # The Regexp source for the glob element at +index+, and the index after it.
    def translate(chars, index)
      case chars[index]
      when "*" then [".*", index + 1]
      when "?" then [".", index + 1]
      when "\\" then [Regexp.escape(chars[index + 1] || "\\"), index + 2]
      when "[" then character_class(chars, index)
      else [Regexp.escape(chars[index]), index + 1]
      end
    end

    def character_class(chars, start)
      index = start + 1
      negated = chars[index] == "^"
      index += 1 if negated
      members = +""
      while index < chars.length && chars[index] != "]"
        members << class_member(chars, index)
        index += chars[index] == "\\" ? 2 : 1
      end
      return [Regexp.escape("["), start + 1] if index >= chars.length

      ["[#{"^" if negated}#{members}]", index + 1]
    end

    # One member of a class: ranges keep their dash, everything else is literal.
    def class_member(chars, index)
      char = chars[index]
      return "\\#{chars[index + 1]}" if char == "\\" && chars[index + 1]
      return "-" if char == "-" && index.positive? && chars[index - 1] != "[" && chars[index + 1] != "]"

      char.match?(/[\\\]\[\^\-&]/) ? "\\#{char}" : char
    end
  end
end
