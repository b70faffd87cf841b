# frozen_string_literal: true

require "redis"

# Random keys and glob patterns from one seed: letters, Redis's special
# characters, multibyte UTF-8 and bytes that are not UTF-8, with patterns that
# are mostly variations on a key (so that many match) and partly noise.
class GlobSamples
  LETTERS = %w[a b c z A :].freeze
  SPECIALS = ["*", "?", "[", "]", "^", "-", "\\", "!"].freeze
  MULTIBYTE = %w[é 😀].freeze
  INVALID = ["\xC3", "\xA9", "\x80", "\xFF"].map(&:b).freeze
  # Whole elements, for noise patterns: classes, ranges (reversed, signed,
  # up to "]"), escapes, unclosed and empty classes.
  ELEMENTS = ["[a-c]", "[^a]", "[z-a]", "\\*", "\\?", "\\[", "[]", "[^]", "[a-]", "[-a]", "[\\]]", "[é]",
              "[a-\xC3]", "[\xC3-\xFF]", "[\x80-a]", "\\\\", "[^\xC3]", "[:-a]", "[", "[^"].map(&:b).freeze
  # Written as literal bytes outside a class, these need a backslash.
  ESCAPED = ["*", "?", "[", "\\"].freeze
  # Patterns for the rules random ones may miss, and keys they are about.
  HANDPICKED_PATTERNS = ["", "*", "**", "?", "user:??", "user:[ab", "[a-]", "[]a]", "[^]", "[z-a]", "a\\", "[a\\",
                         "[\\a-z]", "[a-\\]]", "\\", "[", "[^", "é?", "?😀", "[a-\xC3]", "[\xC3-a]", "\xC3?",
                         "*[^a]*", "*\\**", "[-]", "[^-a]"].map(&:b).freeze
  HANDPICKED_KEYS = ["user:é", "user:ab", "user:a", "]", "^", "-", "\\", "a\\", "[", "é", "😀", "a😀"].freeze

  def initialize(seed)
    @random = Random.new(seed)
  end

  # +count+ distinct keys (the empty key among them), each an Array of pieces.
  def keys(count)
    keys = [[]]
    keys << Array.new(1 + @random.rand(6)) { piece } while keys.size < count
    keys.uniq { |pieces| pieces.map(&:b).join }
  end

  # +count+ patterns, about two in three derived from one of +keys+.
  def patterns(count, keys)
    Array.new(count) do
      pieces = @random.rand(3).zero? ? noise : derived(keys.sample(random: @random))
      pieces.map(&:b).join
    end
  end

  private

  def piece
    case @random.rand(100)
    when 0...60 then LETTERS.sample(random: @random)
    when 60...80 then SPECIALS.sample(random: @random)
    when 80...92 then MULTIBYTE.sample(random: @random)
    else INVALID.sample(random: @random)
    end
  end

  def noise
    Array.new(1 + @random.rand(7)) { @random.rand(3).zero? ? ELEMENTS.sample(random: @random) : piece }
  end

  def derived(key)
    pattern = []
    skip = 0
    key.each do |piece|
      if skip.positive?
        skip -= 1
      else
        element, skip = variation(piece)
        pattern << element
      end
    end
    pattern << "*" if @random.rand(5).zero?
    pattern
  end

  # The pattern element standing for +piece+, and how many pieces after it a
  # star swallowed.
  def variation(piece)
    bytes = piece.b
    case @random.rand(100)
    when 0...35 then [ESCAPED.include?(piece) ? "\\#{piece}" : piece, 0]
    when 35...50 then ["?" * bytes.bytesize, 0]
    when 50...55 then ["?", 0]
    when 55...70 then ["*", @random.rand(2)]
    when 70...85 then [klass(bytes.byteslice(0, 1), negated: false) + bytes.byteslice(1..), 0]
    when 85...95 then [klass(LETTERS.sample(random: @random), negated: true) + bytes.byteslice(1..), 0]
    else [noise.first, 0]
    end
  end

  # A class holding +byte+ (a String of one byte), with a letter range beside it.
  def klass(byte, negated:)
    member = ["]", "\\", "^", "-"].include?(byte) ? "\\#{byte}" : byte
    range = ["a-c", "c-a", ":-z", "A-a"].sample(random: @random)
    members = @random.rand(2).zero? ? [member.b, range] : [range, member.b]
    "[#{"^" if negated}".b + members.join + (@random.rand(8).zero? ? "" : "]")
  end
end

# The glob matcher against a real redis-server: for each of a few thousand
# seeded random patterns, the keys KEYS returns are the keys the native matcher
# and Glob::Pattern pick, and the Pattern's source picks a subset of them.
# GLOB_SEED=<seed> replays a run.
RSpec.describe SyncedMemoryStore::Glob, "against Redis" do
  before(:all) do
    @seed = Integer(ENV.fetch("GLOB_SEED", RSpec.configuration.seed))
    samples = GlobSamples.new(@seed)
    key_pieces = samples.keys(300)
    @keys = key_pieces.map { |pieces| pieces.map(&:b).join.force_encoding(Encoding::UTF_8) }
    @keys = (@keys + GlobSamples::HANDPICKED_KEYS).uniq(&:b)
    @server = RedisServer.start
    @redis = Redis.new(url: @server.url)
    @redis.mset(*@keys.flat_map { |key| [key.b, "1"] })
    @patterns = (samples.patterns(3000, key_pieces) + GlobSamples::HANDPICKED_PATTERNS).uniq
    # Redis's answers, as sorted bytes: the reference for every example.
    @redis_answers = @patterns.to_h { |pattern| [pattern, @redis.keys(pattern).map(&:b).sort] }
  end

  after(:all) do
    @redis&.close
    @server&.stop
  end

  # Expects the keys picked by the block (given a pattern and a key) to be
  # Redis's answer for every pattern; the failure names the seed and the first
  # patterns that differ.
  def expect_redis_answers(&picks)
    differing = @patterns.filter_map do |pattern|
      ours = @keys.select { |key| picks.call(pattern, key) }.map(&:b).sort
      redis = @redis_answers.fetch(pattern)
      "pattern #{pattern.inspect}: Redis #{redis.inspect}, ours #{ours.inspect}" unless ours == redis
    end
    expect(differing).to be_empty, lambda {
      ["#{differing.size} of #{@patterns.size} patterns disagree (GLOB_SEED=#{@seed} replays):",
       *differing.first(10)].join("\n")
    }
  end

  it "generates patterns that Redis matches to many different sets of keys" do
    answers = @redis_answers.values
    expect(answers.count(&:empty?)).to be < answers.size / 2
    expect(answers.uniq.size).to be > @patterns.size / 10
    expect(answers.count { |keys| keys.any? { |key| !key.dup.force_encoding(Encoding::UTF_8).valid_encoding? } })
      .to be > 20
  end

  it "matches exactly the keys Redis's KEYS returns" do
    expect_redis_answers { |pattern, key| described_class.match?(pattern, key) }
  end

  it "gives a Regexp whose match?, match, === and =~ pick exactly the keys Redis's KEYS returns" do
    patterns = @patterns.to_h { |pattern| [pattern, described_class.to_regexp(pattern)] }

    expect_redis_answers { |pattern, key| patterns[pattern].match?(key) }
    expect_redis_answers { |pattern, key| key.match(patterns[pattern]) }
    expect_redis_answers { |pattern, key| patterns[pattern] === key } # rubocop:disable Style/CaseEquality
    expect_redis_answers { |pattern, key| patterns[pattern] =~ key }
  end

  it "gives a Regexp whose source matches a subset of the valid UTF-8 keys Redis's KEYS returns" do
    utf8_keys = @keys.select(&:valid_encoding?)
    excess = @patterns.filter_map do |pattern|
      by_source = Regexp.new(described_class.to_regexp(pattern).source, Regexp::MULTILINE)
      extra = utf8_keys.grep(by_source).map(&:b) - @redis_answers.fetch(pattern)
      "pattern #{pattern.inspect}: source matched #{extra.inspect} too" unless extra.empty?
    end

    expect(excess).to be_empty, -> { ["GLOB_SEED=#{@seed} replays:", *excess.first(10)].join("\n") }
  end

  it "agrees with Redis past 1000 nested stars, where Redis gives up" do
    redis = Redis.new(url: @server.url(1))
    keys = ["a" * 1002, "a" * 1003]
    redis.mset(*keys.flat_map { |key| [key, "1"] })
    patterns = ["*a" * 1000, "*a" * 1001, "a*" * 1001, "a*" * 1002, "?*" * 1001, "*?" * 2000]

    answers = patterns.map { |pattern| redis.keys(pattern).sort }
    ours = patterns.map { |pattern| keys.select { |key| described_class.match?(pattern, key) } }
    by_pattern = patterns.map { |pattern| keys.grep(described_class.to_regexp(pattern)) }

    expect(answers.map(&:size)).to eq([2, 0, 2, 0, 2, 0])
    expect(ours).to eq(answers)
    expect(by_pattern).to eq(answers)
  ensure
    redis&.close
  end
end
