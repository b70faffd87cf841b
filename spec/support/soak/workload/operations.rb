# frozen_string_literal: true

class SoakWorkload
  # The cache operations a SoakWorkload thread picks from (WEIGHTS gives
  # their odds): reads, fetches, writes, deletes, counter changes and clears
  # over the keys and counters described in SoakWorkload's documentation, each
  # rolled from the thread's own dice (+rng+), so that a seed replays the same
  # choices. Values name the thread and the step (+label+) that wrote them.
  module Operations
    # Share of delete_matched calls given a Regexp rather than a glob.
    REGEXP_SHARE = 0.02

    # delete_matched patterns: globs over the plain keys "k0".."k19" and the
    # counters "n0".."n3", and Regexps, which make every other process drop
    # everything (they cannot run a Ruby Regexp natively).
    GLOBS = ["k1*", "k[0-3]", "k?", "*1", "n*", "[kn]2*", "k1[5-9]", "*7", "k\\1", "?[0-9]"].freeze
    REGEXPS = [/\Ak1[0-4]\z/, /3\z/, /\An[01]\z/].freeze

    # Larger than the store's default broadcast_max_bytes (64 KiB).
    BIG_VALUE_BYTES = 70 * 1024

    # The tags of tagged writes (one or two each).
    TAGS = %w[t0 t1 t2 t3].freeze

    # The keys of the tags' versions, which the convergence check compares too.
    def self.tag_keys
      TAGS.map { |tag| "#{SyncedMemoryStore::Store::TAG_KEY_PREFIX}#{tag}" }
    end

    # Keys read mostly by fetches with a short expiry and changed rarely, so
    # that their entries live long enough to enter their refresh window
    # (stores with refresh_ahead: refresh them) while other processes write,
    # delete and invalidate them now and then. Compared by the check too.
    HOT_KEYS = %w[h0 h1 h2 h3].freeze

    private

    def perform(operation, rng, label)
      store = @store.call
      case operation
      when :read then store.read(@keys.sample(random: rng))
      when :read_counter then store.read(@counters.sample(random: rng), raw: true)
      when :read_multi then store.read_multi(*@keys.sample(3, random: rng))
      when :read_multi_counters then store.read_multi(*@counters.sample(2, random: rng), raw: true)
      when :fetch then fetch(store, rng, label)
      when :fetch_multi then store.fetch_multi(*@keys.sample(rng.rand(2..3), random: rng)) { value(rng, label) }
      when :write, :write_unless_exist, :write_counter then write(store, operation, rng, label)
      when :write_multi then write_multi(store, rng, label)
      when :write_tagged, :fetch_tagged, :write_multi_tagged, :fetch_multi_tagged, :invalidate_tags
        tagged(store, operation, rng, label)
      when :fetch_hot, :change_hot then hot(store, operation, rng, label)
      else change(store, operation, rng)
      end
    end

    def fetch(store, rng, label)
      options = rng.rand < 0.1 ? { force: true } : {}
      store.fetch(@keys.sample(random: rng), expiring(options, rng)) { value(rng, label) }
    end

    # A fetch of a hot key (a quarter of them tagged), or a change to one:
    # a write, a delete or an invalidation of the tag it may carry.
    def hot(store, operation, rng, label)
      key = HOT_KEYS.sample(random: rng)
      options = { expires_in: rng.rand(@fetch_expires_in || (0.3..1.5)) }
      options[:tags] = TAGS.first if rng.rand < 0.25
      return store.fetch(key, options) { value(rng, label) } if operation == :fetch_hot

      case rng.rand(3)
      when 0 then store.write(key, value(rng, label), options)
      when 1 then store.delete(key)
      else store.invalidate_tags(TAGS.first)
      end
    end

    # +options+ with a short expires_in, for half the fetches.
    def expiring(options, rng)
      return options unless @fetch_expires_in && rng.rand < 0.5

      options.merge(expires_in: rng.rand(@fetch_expires_in))
    end

    def write(store, operation, rng, label)
      options = { write_counter: { raw: true }, write_unless_exist: { unless_exist: true } }.fetch(operation, {})
      if @silent.positive? && rng.rand < @silent
        options[:silent] = true
        @operations.add(:silent_write)
      end
      if operation == :write_counter
        store.write(@counters.sample(random: rng), rng.rand(1000), options)
      else
        store.write(@keys.sample(random: rng), value(rng, label), options)
      end
    end

    def write_multi(store, rng, label)
      store.write_multi(@keys.sample(rng.rand(2..4), random: rng).to_h { |key| [key, value(rng, label)] })
    end

    # Tagged writes and fetches over the plain keys (so tagged and untagged
    # entries replace each other), and invalidations of one or two tags.
    def tagged(store, operation, rng, label)
      tags = TAGS.sample(rng.rand(1..2), random: rng)
      case operation
      when :write_tagged then store.write(@keys.sample(random: rng), value(rng, label), tags: tags)
      when :fetch_tagged
        store.fetch(@keys.sample(random: rng), expiring({ tags: tags }, rng)) { value(rng, label) }
      when :write_multi_tagged
        store.write_multi(@keys.sample(rng.rand(2..3), random: rng).to_h { |key| [key, value(rng, label)] },
                          tags: tags)
      when :fetch_multi_tagged
        store.fetch_multi(*@keys.sample(rng.rand(2..3), random: rng), tags: tags) { value(rng, label) }
      else store.invalidate_tags(tags)
      end
    end

    def change(store, operation, rng)
      case operation
      when :delete then store.delete(@all_keys.sample(random: rng))
      when :delete_multi then store.delete_multi(@all_keys.sample(rng.rand(2..4), random: rng))
      when :delete_matched then store.delete_matched(pattern(rng))
      when :increment then store.increment(@counters.sample(random: rng), rng.rand(1..5))
      when :decrement then store.decrement(@counters.sample(random: rng), rng.rand(1..5))
      when :clear then store.clear
      else raise ArgumentError, "unknown operation #{operation.inspect}"
      end
    end

    def pattern(rng)
      rng.rand < REGEXP_SHARE ? REGEXPS.sample(random: rng) : GLOBS.sample(random: rng)
    end

    # Mostly Strings that name the thread and step; some Hashes, Integers, and
    # now and then a value too large to ship by value.
    def value(rng, label)
      case rng.rand(100)
      when 0...80 then label
      when 80...90 then { "by" => label, "list" => [1, 2.5, :sym] }
      when 90...99 then rng.rand(1_000_000)
      else label + ("x" * BIG_VALUE_BYTES)
      end
    end
  end
end
