# frozen_string_literal: true

require "concurrent"
require "io/wait"

# Single-flight fetch: threads of one process that miss the same key at once
# run its block once between them. Blocks are held open with events (never
# sleeps) until every thread has boarded, which the store's own counters show.
RSpec.describe SyncedMemoryStore::Store, "single-flight fetch" do
  let(:options) { {} }
  let(:store) { described_class.new(sync: false, **options) }
  let(:threads) { [] }
  let(:release) { Concurrent::Event.new }

  # A thread running +call+ (fetch or fetch_multi), remembered for clean-up.
  def start(&)
    Thread.new(&).tap do |thread|
      thread.report_on_exception = false
      threads << thread
    end
  end

  # Waits up to 5 s for +event+; fails the example if it never comes.
  def await(event, what)
    expect(event.wait(5)).to be(true), "#{what} never happened"
  end

  # Waits until +count+ fetches have found another thread computing their key.
  def await_waiters(count)
    wait_until(message: "#{count} fetches never boarded") { store.stats[:fetch_waits] >= count }
  end

  # A block that records its call in +calls+, signals +started+ and returns
  # +value+ once the example releases it.
  def held_block(calls, started, value)
    lambda do |*|
      calls << Thread.current
      started.set
      await(release, "the release of the block")
      value
    end
  end

  after do
    release.set
    threads.each do |thread|
      thread.join(5) || thread.kill
    rescue StandardError
      nil # the example looked at what the thread raised
    end
    # Whatever each example did, nothing stays in flight.
    expect(store.stats[:fetches_in_flight]).to eq(0)
  end

  [["no L2", {}], ["a MemoryStore L2", { cache: :memory_store }]].each do |description, store_options|
    context "with #{description}" do
      let(:options) { store_options }

      it "runs the block once for threads that miss one key together, and gives each thread the value" do
        calls = Queue.new
        started = Concurrent::Event.new
        block = held_block(calls, started, { "user" => "ann", "roles" => %w[admin] })
        fetchers = Array.new(6) { start { store.fetch("cold", &block) } }
        await(started, "the first block's start")
        await_waiters(5)
        release.set

        values = fetchers.map(&:value)
        expect(calls.size).to eq(1)
        expect(values).to all(eq("user" => "ann", "roles" => %w[admin]))
        expect(values.map(&:object_id).uniq.size).to eq(6) # each thread its own copy
        expect(store.read("cold")).to eq("user" => "ann", "roles" => %w[admin])
        expect(store.stats).to include(fetch_waits: 5, fetch_wait_timeouts: 0, fetches_in_flight: 0)
      end

      it "gives the error to the thread whose block raised only; one waiter then runs the block" do
        calls = Queue.new
        started = Concurrent::Event.new
        block = lambda do |*|
          calls << Thread.current
          next "from the second run" if calls.size > 1

          started.set
          await(release, "the release of the failing block")
          raise ArgumentError, "the first run fails"
        end
        runner = start { store.fetch("k", &block) }
        await(started, "the first block's start")
        waiters = Array.new(4) { start { store.fetch("k", &block) } }
        await_waiters(4)
        release.set

        expect { runner.value }.to raise_error(ArgumentError, "the first run fails")
        expect(waiters.map(&:value)).to all(eq("from the second run"))
        expect(calls.size).to eq(2)
        expect(store.read("k")).to eq("from the second run")
      end
    end
  end

  context "with lock_timeout: 0.2" do
    let(:options) { { lock_timeout: 0.2 } }

    it "lets a waiter run the block itself once lock_timeout has passed" do
      started = Concurrent::Event.new
      runner = start { store.fetch("slow", &held_block(Queue.new, started, "the runner's")) }
      await(started, "the runner's start")

      began = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      expect(store.fetch("slow") { "the waiter's" }).to eq("the waiter's")
      expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - began).to be >= 0.2
      expect(store.stats).to include(fetch_waits: 1, fetch_wait_timeouts: 1)

      release.set
      expect(runner.value).to eq("the runner's")
      expect(store.read("slow")).to eq("the runner's") # the last write
    end
  end

  it "takes lock_timeout per call, over the store's" do
    started = Concurrent::Event.new
    start { store.fetch("slow", &held_block(Queue.new, started, "the runner's")) }
    await(started, "the runner's start")

    expect(store.fetch("slow", lock_timeout: 0.05) { "the waiter's" }).to eq("the waiter's")
    expect(store.stats[:fetch_wait_timeouts]).to eq(1)
  end

  [nil, false].each do |off|
    context "with lock_timeout: #{off.inspect}" do
      let(:options) { { lock_timeout: off } }

      it "runs every thread's block (single-flight off)" do
        all_started = Concurrent::CountDownLatch.new(4)
        fetchers = Array.new(4) do |index|
          start do
            store.fetch("k") do
              all_started.count_down
              await(release, "the release")
              "from #{index}"
            end
          end
        end
        # Four blocks run at once only if no thread waits for another.
        expect(all_started.wait(5)).to be(true), "the four blocks never ran together"
        release.set

        expect(fetchers.map(&:value)).to contain_exactly("from 0", "from 1", "from 2", "from 3")
        expect(store.stats).to include(fetch_waits: 0, fetches_in_flight: 0)
      end
    end
  end

  it "can be turned off per call" do
    started = Concurrent::Event.new
    start { store.fetch("k", &held_block(Queue.new, started, "the runner's")) }
    await(started, "the runner's start")

    expect(store.fetch("k", lock_timeout: false) { "its own" }).to eq("its own")
    expect(store.stats[:fetch_waits]).to eq(0)
  end

  it "rejects a lock_timeout that is not a number of seconds, naming the option" do
    expect { described_class.new(sync: false, lock_timeout: "5") }
      .to raise_error(SyncedMemoryStore::ConfigurationError, /lock_timeout:.*"5"/)
    expect { described_class.new(sync: false, lock_timeout: -1) }
      .to raise_error(SyncedMemoryStore::ConfigurationError, /lock_timeout:.*-1/)
    expect { store.fetch("k", lock_timeout: :soon) { 1 } }.to raise_error(ArgumentError, /lock_timeout:.*:soon/)
    expect(described_class.new(sync: false, lock_timeout: 2.seconds).fetch("k") { "ok" }).to eq("ok")
  end

  it "releases the waiters when the runner's thread is killed: one of them runs the block" do
    started = Concurrent::Event.new
    runner = start { store.fetch("k", &held_block(Queue.new, started, "never returned")) }
    await(started, "the runner's start")
    waiter_calls = Queue.new
    waiters = Array.new(3) do
      start do
        store.fetch("k") do
          waiter_calls << 1
          "from a waiter"
        end
      end
    end
    await_waiters(3)

    runner.kill
    expect(waiters.map(&:value)).to all(eq("from a waiter"))
    expect(waiter_calls.size).to eq(1)
    expect(store.stats).to include(fetch_wait_timeouts: 0, fetches_in_flight: 0)
  end

  it "hands a nil result to the waiters with skip_nil: true, and caches nothing" do
    calls = Queue.new
    started = Concurrent::Event.new
    block = held_block(calls, started, nil)
    fetchers = Array.new(4) { start { store.fetch("k", skip_nil: true, &block) } }
    await(started, "the first block's start")
    await_waiters(3)
    release.set

    expect(fetchers.map(&:value)).to all(be_nil)
    expect(calls.size).to eq(1)
    expect(store.exist?("k")).to be(false)
    expect(store.fetch("k", skip_nil: true) { "computed again" }).to eq("computed again")
  end

  it "keeps keys apart: a slow key holds up neither another key nor another version or namespace of it" do
    started = Concurrent::Event.new
    start { store.fetch("slow", version: 1, &held_block(Queue.new, started, "v1")) }
    await(started, "the slow block's start")

    expect(store.fetch("other") { "other" }).to eq("other")
    expect(store.fetch("slow", version: 2) { "v2" }).to eq("v2")
    expect(store.fetch("slow", namespace: "ns") { "namespaced" }).to eq("namespaced")
    expect(store.stats).to include(fetch_waits: 0, fetches_in_flight: 1)
  end

  it "does not make a forced fetch wait or take another thread's value" do
    started = Concurrent::Event.new
    start { store.fetch("k", &held_block(Queue.new, started, "the runner's")) }
    await(started, "the runner's start")

    expect(store.fetch("k", force: true) { "forced" }).to eq("forced")
    expect(store.fetch("k", force_miss: true) { "forced again" }).to eq("forced again")
    expect(store.stats[:fetch_waits]).to eq(0)
  end

  it "lets a block fetch its own key without waiting for itself" do
    value = store.fetch("k", lock_timeout: 5) { "#{store.fetch("k") { "inner" }} outer" }

    expect(value).to eq("inner outer")
    expect(store.stats).to include(fetch_waits: 0, fetch_wait_timeouts: 0)
  end

  it "serves the stale value under race_condition_ttl while one thread regenerates it, without waiting" do
    freeze_time
    store.write("k", "stale", expires_in: 60)
    travel 61
    started = Concurrent::Event.new
    runner = start do
      store.fetch("k", expires_in: 60, race_condition_ttl: 10, &held_block(Queue.new, started, "fresh"))
    end
    await(started, "the regeneration's start")

    expect(store.fetch("k", expires_in: 60, race_condition_ttl: 10) { "not run" }).to eq("stale")
    release.set
    expect(runner.value).to eq("fresh")
    expect(store.read("k")).to eq("fresh")
    expect(store.stats[:fetch_waits]).to eq(0)
  end

  it "writes the entry with the runner's options; waiters write nothing" do
    freeze_time
    writes = []
    subscriber = ActiveSupport::Notifications.subscribe("cache_write.active_support") { |*, p| writes << p[:key] }
    calls = Queue.new
    started = Concurrent::Event.new
    block = held_block(calls, started, "v")
    fetchers = Array.new(3) { start { store.fetch("k", expires_in: 60, &block) } }
    await(started, "the first block's start")
    await_waiters(2)
    release.set
    fetchers.each(&:join)

    expect(writes.size).to eq(1)
    travel 59
    expect(store.read("k")).to eq("v")
    travel 1
    expect(store.read("k")).to be_nil
  ensure
    ActiveSupport::Notifications.unsubscribe(subscriber)
  end

  if ActiveSupport.gem_version >= Gem::Version.new("7.1")
    it "writes with the expiry the runner's block set through its WriteOptions" do
      freeze_time
      started = Concurrent::Event.new
      fetchers = Array.new(3) do
        start do
          store.fetch("k") do |_name, write_options|
            started.set
            await(release, "the release")
            write_options.expires_in = 30
            "v"
          end
        end
      end
      await(started, "the first block's start")
      await_waiters(2)
      release.set

      expect(fetchers.map(&:value)).to all(eq("v"))
      travel 30
      expect(store.read("k")).to be_nil
    end
  end

  it "reports a waiter's fetch as a miss on read and a fetch_hit from the flight, never as a generate" do
    events = Hash.new { |hash, thread| hash[thread] = [] }
    pattern = /\Acache_(read|fetch_hit|generate|write)\.active_support\z/
    subscriber = ActiveSupport::Notifications.subscribe(pattern) do |name, *, payload|
      events[Thread.current] << [name[pattern, 1], payload[:hit], payload[:source]]
    end
    started = Concurrent::Event.new
    block = held_block(Queue.new, started, "v")
    runner = start { store.fetch("k", &block) }
    await(started, "the runner's start")
    waiter = start { store.fetch("k", &block) }
    await_waiters(1)
    release.set
    [runner, waiter].each(&:join)

    expect(events[runner]).to eq([["read", false, nil], ["generate", nil, nil], ["write", nil, nil]])
    expect(events[waiter]).to eq([["read", false, nil], ["fetch_hit", nil, :flight]])
  ensure
    ActiveSupport::Notifications.unsubscribe(subscriber)
  end

  context "with an L2 and unless_exist: true" do
    let(:l2) { ActiveSupport::Cache::MemoryStore.new }
    let(:options) { { cache: l2 } }

    it "gives the waiters the block's value when L2 refused the runner's write, as a fetch returns it" do
      started = Concurrent::Event.new
      block = held_block(Queue.new, started, "computed")
      fetchers = Array.new(3) { start { store.fetch("k", unless_exist: true, &block) } }
      await(started, "the first block's start")
      await_waiters(2)
      l2.write("k", "already there")
      release.set

      expect(fetchers.map(&:value)).to all(eq("computed"))
      expect(store.read("k")).to eq("already there")
    end
  end

  context "with an L2 whose first read can be held open" do
    let(:l2) do
      Class.new(ActiveSupport::Cache::MemoryStore) do
        attr_accessor :gate

        private

        def read_entry(key, **options)
          entry = super
          gate&.call
          entry
        end
      end.new
    end
    let(:options) { { cache: l2 } }

    it "does not run the block again for a fetch whose read missed before another thread's run ended" do
      reading = Concurrent::Event.new
      l2.gate = lambda do
        l2.gate = nil
        reading.set
        await(release, "the release of the L2 read")
      end
      calls = Queue.new
      late = start do
        store.fetch("k") do
          calls << :late
          "from the late fetch"
        end
      end
      await(reading, "the late fetch's L2 read")
      # Runs, writes and ends while the late fetch's read is still under way.
      first = store.fetch("k") do
        calls << :first
        "from the first fetch"
      end
      expect(first).to eq("from the first fetch")
      release.set

      expect(late.value).to eq("from the first fetch")
      expect(calls.size).to eq(1)
    end
  end

  describe "fetch_multi" do
    let(:recording_class) do
      Class.new(described_class) do
        def written
          @written ||= Queue.new
        end

        def write_multi_entries(entries, **options)
          entries.each_key { |key| written << key }
          super
        end
      end
    end
    let(:store) { recording_class.new(sync: false, cache: :memory_store) }

    it "computes each key once for threads missing overlapping sets of keys, and writes it once" do
      computed = Queue.new
      started = Concurrent::CountDownLatch.new(2)
      block = lambda do |name|
        computed << name
        started.count_down
        await(release, "the release")
        "value of #{name}"
      end
      first = start { store.fetch_multi("a", "b", "c", &block) }
      # Each thread leads its first key, then meets the other's keys in the other order.
      second = start { store.fetch_multi("c", "b", "d", &block) }
      expect(started.wait(5)).to be(true), "the two first keys never started"
      release.set

      expect(first.value).to eq("a" => "value of a", "b" => "value of b", "c" => "value of c")
      expect(second.value).to eq("c" => "value of c", "b" => "value of b", "d" => "value of d")
      computed_names = Array.new(computed.size) { computed.pop }
      expect(computed_names).to contain_exactly("a", "b", "c", "d")
      expect(Array.new(store.written.size) { store.written.pop }).to contain_exactly("a", "b", "c", "d")
      expect(store.stats).to include(fetch_wait_timeouts: 0, fetches_in_flight: 0)
    end

    it "does not deadlock threads that meet each other's keys in the opposite order" do
      computed = Queue.new
      started = Concurrent::CountDownLatch.new(2)
      releases = { "a" => Concurrent::Event.new, "b" => Concurrent::Event.new }
      block = lambda do |name|
        computed << name
        started.count_down
        await(releases.fetch(name), "the release of #{name}")
        name.upcase
      end
      forward = start { store.fetch_multi("a", "b", &block) }
      backward = start { store.fetch_multi("b", "a", &block) }
      expect(started.wait(5)).to be(true), "the two first keys never started"
      began = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      # forward lands "a" and boards "b" while backward still computes it ...
      releases["a"].set
      await_waiters(1)
      # ... then backward lands "b" and takes forward's landed "a".
      releases["b"].set

      expect(forward.value).to eq("a" => "A", "b" => "B")
      expect(backward.value).to eq("b" => "B", "a" => "A")
      expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - began).to be < 2 # lock_timeout is 5 s
      expect(computed.size).to eq(2)
      expect(store.stats).to include(fetch_waits: 2, fetch_wait_timeouts: 0)
    end

    it "waits for a key a fetch is computing, and a fetch waits for one a fetch_multi is computing" do
      computed = Queue.new
      started = Concurrent::Event.new
      multi = start { store.fetch_multi("a", "b", &held_block(computed, started, "shared")) }
      await(started, "the fetch_multi's first block")
      single = start { store.fetch("a", &held_block(computed, Concurrent::Event.new, "not used")) }
      await_waiters(1)
      release.set

      expect(multi.value).to eq("a" => "shared", "b" => "shared")
      expect(single.value).to eq("shared")
      expect(computed.size).to eq(2) # "a" and "b", once each
    end

    it "gives a failing key's error to its runner only; a waiting fetch_multi computes that key itself" do
      started = Concurrent::Event.new
      failing = start do
        store.fetch_multi("a", "b") do |name|
          started.set
          await(release, "the release")
          raise ArgumentError, "no #{name}"
        end
      end
      await(started, "the failing block's start")
      other = start { store.fetch_multi("a", "c") { |name| "#{name} from the other" } }
      await_waiters(1)
      release.set

      expect { failing.value }.to raise_error(ArgumentError, "no a")
      expect(other.value).to eq("a" => "a from the other", "c" => "c from the other")
    end
  end

  it "leaves the parent's flights behind in a forked child" do
    started = Concurrent::Event.new
    start { store.fetch("k", &held_block(Queue.new, started, "the parent's")) }
    await(started, "the parent's block")
    reader, writer = IO.pipe

    pid = Process.fork do
      reader.close
      value = store.fetch("k", lock_timeout: 5) { "the child's" }
      writer.write(Marshal.dump([value, store.stats.slice(:fetch_waits, :fetches_in_flight)]))
      writer.close
      exit!(0)
    end
    writer.close
    # The child answers at once: it never waits for the parent's runner.
    expect(reader.wait_readable(3)).to be_truthy
    result = Marshal.load(reader.read) # rubocop:disable Security/MarshalLoad -- our own child
    Process.wait(pid)

    expect(result).to eq(["the child's", { fetch_waits: 0, fetches_in_flight: 0 }])
    expect(store.stats[:fetches_in_flight]).to eq(1) # the parent's runner goes on
  end
end
