# frozen_string_literal: true

# Redis's glob rules, byte by byte; spec/integration/glob_redis_spec.rb checks
# them against a real redis-server.
RSpec.describe SyncedMemoryStore::Glob do
  # The keys the native matcher picks, after checking that the Pattern agrees.
  def matches(glob, *keys)
    picked = keys.select { |key| described_class.match?(glob, key) }
    expect_pattern_to_pick(described_class.to_regexp(glob), keys, picked)
    picked
  end

  # Every method Ruby may call on the Pattern picks +picked+ from +keys+, and its
  # source picks a subset of the UTF-8 ones.
  def expect_pattern_to_pick(pattern, keys, picked)
    # Pattern#match? itself is under test here, so not grep.
    expect(keys.select { |key| pattern.match?(key) }).to eq(picked) # rubocop:disable Style/SelectByRegexp
    expect(keys.grep(pattern)).to eq(picked)
    expect(keys.reject { |key| key.match(pattern).nil? }).to eq(picked)
    expect(keys.reject { |key| (pattern =~ key).nil? }).to eq(picked)
    utf8_keys = keys.select { |key| key.encoding == Encoding::UTF_8 && key.valid_encoding? }
    expect(utf8_keys.grep(Regexp.new(pattern.source, Regexp::MULTILINE)) - picked).to eq([])
  end

  it "matches any run of bytes with *, across newlines" do
    expect(matches("user:*", "user:", "user:1", "user:1\n2", "users:1")).to eq(["user:", "user:1", "user:1\n2"])
    expect(matches("*a*b*c", "xxaxxbxxbxxc", "xxaxxbxxbxx")).to eq(["xxaxxbxxbxxc"])
  end

  it "matches exactly one byte with ?, so two of them match a two-byte character" do
    expect(matches("user:?", "user:1", "user:12", "user:", "user:é")).to eq(["user:1"])
    expect(matches("user:??", "user:é", "user:ab", "user:a")).to eq(%w[user:é user:ab])
    expect(matches("a????", "a😀", "a😀b")).to eq(["a😀"])
  end

  it "compares bytes, whatever the encodings of the glob and the key" do
    expect(matches("é".b, "é", "é".b, "e")).to eq(["é", "é".b])
    expect(matches("\xC3?".b, "é", "ü")).to eq(%w[é ü])
    expect(matches("a?c", "a\xFFc", "a\xFF\xFFc")).to eq(["a\xFFc"])
  end

  it "matches character classes, ranges, reversed ranges and negated classes, one byte each" do
    expect(matches("v[ab]", "va", "vb", "vc")).to eq(%w[va vb])
    expect(matches("v[a-c]", "va", "vc", "vd")).to eq(%w[va vc])
    expect(matches("v[c-a]", "va", "vc", "vd")).to eq(%w[va vc])
    expect(matches("v[^a]", "va", "vb", "vé", "v\xFF")).to eq(["vb", "v\xFF"])
    expect(matches("[é]", "é", "\xC3", "\xA9")).to eq(["\xC3", "\xA9"])
  end

  it "compares range ends as signed bytes, as Redis on x86-64 does" do
    keys = ["a", "b", "0", "\x00", "\x80", "\xC3", "\xFF"]
    expect(matches("[a-\xC3]".b, *keys)).to eq(["a", "0", "\x00", "\xC3", "\xFF"])
  end

  it "treats backslash-escaped and Regexp-special characters literally, and a trailing backslash as itself" do
    expect(matches("a\\*b", "a*b", "axb")).to eq(["a*b"])
    expect(matches("a.b+(c)", "a.b+(c)", "axbb(c)")).to eq(["a.b+(c)"])
    expect(matches("[\\]]", "]", "\\")).to eq(["]"])
    expect(matches("a\\", "a", "a\\")).to eq(["a\\"])
  end

  it "makes an unclosed [ a class of the rest of the pattern" do
    expect(matches("user:[ab", "user:a", "user:b", "user:[ab")).to eq(%w[user:a user:b])
    expect(matches("a[", "a", "a[")).to eq([])
    expect(matches("a[^", "a[", "ab")).to eq(["a[", "ab"])
  end

  it "reads ] right after [ as the end of an empty class, and a-] as a range up to ]" do
    expect(matches("[]a]", "a]", "]", "a")).to eq([])
    expect(matches("[^]a]", "xa]", "a")).to eq(["xa]"])
    expect(matches("[a-]", "a", "]", "^", "-")).to eq(["a", "]", "^"])
  end

  it "anchors the whole key" do
    expect(matches("b", "abc", "b")).to eq(["b"])
  end

  it "matches the empty key with the empty pattern and with *, as KEYS does, and with nothing else" do
    expect(matches("", "", "a")).to eq([""])
    expect(matches("*", "", "a")).to eq(["", "a"])
    expect(matches("**", "", "a")).to eq(["a"])
  end

  it "matches nothing when more than 1000 stars come before the pattern's last element, as Redis gives up" do
    key = "a" * 1002
    # Not through #matches: Onigmo would backtrack through 1000 .* in the source for long.
    expect(described_class.match?("*a" * 1000, key)).to be(true)
    expect(described_class.match?("a*" * 1001, key)).to be(true)
    expect(described_class.match?("*a" * 1001, key)).to be(false)
    expect(described_class.to_regexp("*a" * 1001).match?(key)).to be(false)
    expect(described_class.to_regexp("*a" * 1001).source).to eq("(?!)")
  end

  it "raises TypeError for a glob or key that is not a String" do
    expect { described_class.match?("a", nil) }.to raise_error(TypeError)
    expect { described_class.match?(1, "a") }.to raise_error(TypeError)
  end

  describe ".to_regexp" do
    let(:pattern) { described_class.to_regexp("user:??") }

    it "is a Regexp that keeps its glob" do
      expect(pattern).to be_a(Regexp).and(be_a(described_class::Pattern))
      expect(pattern.glob).to eq("user:??".b)
      expect(pattern).to eq(described_class.to_regexp("user:??"))
      expect(described_class.to_regexp("[é]")).not_to eq(described_class.to_regexp("[ü]"))
    end

    it "answers match with MatchData for the whole key, which String#match returns too" do
      expect(pattern.match("user:é")[0]).to eq("user:é")
      expect("user:é".match(pattern)[0]).to eq("user:é")
      expect(pattern.match("user:é") { |data| data.string.length }).to eq(6)
      expect(pattern.match("user:\xFF\xFF")[0]).to eq("user:\xFF\xFF".b)
      expect(pattern.match("user:a")).to be_nil
      expect(pattern.match(nil)).to be_nil
    end

    it "answers case/when and Symbols, and never matches past the start of a key" do
      key = "user:é"
      matched = case key when pattern then true else false end
      expect(matched).to be(true)
      expect(pattern.match?(:"user:ab")).to be(true)
      expect(pattern === 1).to be(false) # rubocop:disable Style/CaseEquality
      expect(pattern.match?("user:ab", 1)).to be(false)
      expect(pattern.match?("user:ab", -7)).to be(true)
    end

    it "has a source that keeps only ASCII for one-byte elements, so it matches a subset" do
      expect(pattern.source).to eq("\\A(?!\\z)user:[\\x00-\\x7F][\\x00-\\x7F]\\z")
      by_source = Regexp.new(pattern.source, Regexp::MULTILINE)
      expect(%w[user:ab user:é].grep(by_source)).to eq(["user:ab"])
      expect(Regexp.new(described_class.to_regexp("é*").source).match?("é😀")).to be(true)
      expect(Regexp.new(described_class.to_regexp("[^a]").source).match?("b")).to be(true)
    end

    it "makes MemoryStore#delete_matched delete exactly the keys the glob matches" do
      memory = ActiveSupport::Cache::MemoryStore.new
      ["user:é", "user:ab", "user:a", "user:[ab"].each { |key| memory.write(key, 1) }

      memory.delete_matched(described_class.to_regexp("user:??"))
      memory.delete_matched(described_class.to_regexp("user:[a"))

      expect(["user:é", "user:ab", "user:a", "user:[ab"].select { |key| memory.exist?(key) }).to eq(["user:[ab"])
    end

    it "deletes nothing from a MemoryStore with its own namespace, which rebuilds it from its anchored source" do
      memory = ActiveSupport::Cache::MemoryStore.new(namespace: "app")
      memory.write("user:1", 1)

      memory.delete_matched(described_class.to_regexp("user:*"))

      expect(memory.exist?("user:1")).to be(true)
    end
  end
end
