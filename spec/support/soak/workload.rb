# frozen_string_literal: true

require_relative "tally"

# The soak's work in one peer process (spec/reliability): threads doing
# random cache operations on a small key space shared with every other
# process, so that they collide, from #start to #stop (and again from the
# next #start: the counts go on adding up).
#
# Plain keys (+keys+) hold Strings, Hashes, Integers and now and then a value
# too large to ship by value (it goes over the bus as an invalidation).
# Counter keys (+counters+) are only ever written with <tt>raw: true</tt>,
# incremented and decremented (RedisCacheStore's INCRBY/DECRBY), and read
# with <tt>raw: true</tt>: a RedisCacheStore holds them as bare numbers,
# which a plain read would try to unmarshal. Deletes, delete_multi,
# delete_matched and clear touch both kinds. No expiry: with it, "every
# process reads what L2 holds" would depend on when each one looked.
#
# +store+ is called before every operation, so a store closed and replaced
# by the peer (see PeerProcess#command_soak_reopen) is picked up; calls that
# meet the closed one raise ClosedError, which is counted.
#
# +silent+ is the share of writes made with <tt>silent: true</tt>: a silent
# change is, by design, not told to the other processes, so any value above
# 0 must make the soak's convergence check fail. It exists to prove that it
# can (spec/reliability); the soak proper leaves it at 0.
class SoakWorkload
  # Relative weight of each operation. A clear empties every L1, and so does
  # a delete_matched with a Regexp (REGEXP_SHARE of them) in every other
  # process: at a few thousand operations a second, both are kept rare
  # enough (about one a second between them) for L1s to hold something
  # when the soak looks.
  WEIGHTS = {
    read: 2600, read_counter: 400, read_multi: 600, read_multi_counters: 150, fetch: 800, fetch_multi: 300,
    write: 1400, write_unless_exist: 150, write_counter: 300, write_multi: 600,
    delete: 600, delete_multi: 300, delete_matched: 250, increment: 500, decrement: 150, clear: 1
  }.freeze

  # Share of delete_matched calls given a Regexp rather than a glob.
  REGEXP_SHARE = 0.02

  # delete_matched patterns: globs over the plain keys "k0".."k19" and the
  # counters "n0".."n3", and Regexps, which make every other process drop
  # everything (they cannot run a Ruby Regexp natively).
  GLOBS = ["k1*", "k[0-3]", "k?", "*1", "n*", "[kn]2*", "k1[5-9]", "*7", "k\\1", "?[0-9]"].freeze
  REGEXPS = [/\Ak1[0-4]\z/, /3\z/, /\An[01]\z/].freeze

  # Larger than the store's default broadcast_max_bytes (64 KiB).
  BIG_VALUE_BYTES = 70 * 1024

  # How many unexpected errors are kept with their backtraces.
  UNEXPECTED_KEPT = 20

  attr_reader :operations, :errors

  def initialize(store:, keys:, counters:, tag:, pause: 0.002, silent: 0.0, weights: {})
    @store = store
    @keys = keys
    @counters = counters
    @all_keys = keys + counters
    @tag = tag
    @pause = pause
    @silent = silent
    @choices = cumulative(WEIGHTS.merge(weights))
    @operations = Tally.new
    @errors = Tally.new
    @unexpected = []
    @unexpected_lock = Mutex.new
    @threads = []
    @runs = 0
  end

  # Starts +threads+ threads, the i-th rolling its dice from +seed+ + i.
  def start(threads:, seed:)
    raise ArgumentError, "the workload is running" unless @threads.empty?

    @stop = false
    @runs += 1
    @threads = Array.new(threads) do |index|
      Thread.new { run(Random.new(seed + index), "#{@tag}r#{@runs}t#{index}") }
    end
    self
  end

  # Errors that are neither injected faults nor a closed store, with their
  # backtraces (the first UNEXPECTED_KEPT).
  def unexpected
    @unexpected_lock.synchronize { @unexpected.dup }
  end

  # Lets every thread finish its operation and stop; raises if one has not
  # within +timeout+ seconds.
  def stop(timeout = 30)
    @stop = true
    deadline = monotonic + timeout
    @threads.each do |thread|
      thread.join([deadline - monotonic, 0].max) or raise "a workload thread did not stop within #{timeout} s"
    end
    @threads = []
    self
  end

  private

  def run(rng, thread_tag)
    step = 0
    until @stop
      step += 1
      operation = pick(rng)
      begin
        perform(operation, rng, "#{thread_tag}.#{step}")
        @operations.add(operation)
      rescue StandardError => e
        @operations.add(operation)
        note_error(e)
      end
      # Pacing, so that a dozen threads on two cores leave the bus threads
      # and Redis some CPU (the scheduler, not this sleep, decides the races).
      sleep(rng.rand * @pause) if @pause.positive?
    end
  end

  def pick(rng)
    roll = rng.rand(@choices.last.first)
    @choices.find { |limit, _| roll < limit }.last
  end

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
    else change(store, operation, rng)
    end
  end

  def fetch(store, rng, label)
    options = rng.rand < 0.1 ? { force: true } : {}
    store.fetch(@keys.sample(random: rng), options) { value(rng, label) }
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

  def note_error(error)
    if error.is_a?(SyncedMemoryStore::ClosedError)
      @errors.add(:closed_store)
    elsif error.message.start_with?("injected fault")
      @errors.add(:injected)
    else
      @errors.add(:unexpected)
      @unexpected_lock.synchronize do
        next if @unexpected.size >= UNEXPECTED_KEPT

        @unexpected << [error.class.name, error.message, error.backtrace&.first(8)]
      end
    end
  end

  def cumulative(weights)
    total = 0
    weights.reject { |_, weight| weight.zero? }.map { |operation, weight| [total += weight, operation] }
  end

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end
end
