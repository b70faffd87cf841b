# frozen_string_literal: true

require_relative "tally"
require_relative "workload/operations"

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
# which a plain read would try to unmarshal. Tagged writes, fetches,
# write_multi and fetch_multi put entries tagged with one or two of
# Operations::TAGS under the plain keys, and invalidate_tags moves those
# tags' versions. Deletes, delete_multi,
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
#
# This file runs the threads and counts what they do; the operations
# themselves are SoakWorkload::Operations (workload/operations.rb).
class SoakWorkload
  # Relative weight of each operation. A clear empties every L1, and so does
  # a delete_matched with a Regexp (Operations::REGEXP_SHARE of them) in every other
  # process: at a few thousand operations a second, both are kept rare
  # enough (about one a second between them) for L1s to hold something
  # when the soak looks.
  WEIGHTS = {
    read: 2600, read_counter: 400, read_multi: 600, read_multi_counters: 150, fetch: 800, fetch_multi: 300,
    write: 1400, write_unless_exist: 150, write_counter: 300, write_multi: 600,
    delete: 600, delete_multi: 300, delete_matched: 250, increment: 500, decrement: 150, clear: 1,
    write_tagged: 500, fetch_tagged: 400, write_multi_tagged: 150, fetch_multi_tagged: 100, invalidate_tags: 150,
    fetch_hot: 800, change_hot: 30
  }.freeze

  # How many unexpected errors are kept with their backtraces.
  UNEXPECTED_KEPT = 20

  include Operations

  attr_reader :operations, :errors

  def initialize(store:, keys:, counters:, tag:, pause: 0.002, silent: 0.0, weights: {}, fetch_expires_in: nil)
    @store = store
    # Half the fetches expire within this range (seconds), so that stores
    # with refresh_ahead: keep refreshing hot keys.
    @fetch_expires_in = fetch_expires_in
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
