# frozen_string_literal: true

require "concurrent"

# Fail-safe fetch: an entry is kept past its expiry for up to max_stale, and a
# fetch whose refresh fails returns it instead of raising. Expiry is moved with
# travel (the store judges it by Time.now); back-offs, on the monotonic clock,
# are waited for with deadlines.
RSpec.describe SyncedMemoryStore::Store, "fail-safe fetch" do
  # A MemoryStore that can be taken down: then it fails as RedisCacheStore
  # and MemCacheStore do when their server is unreachable (reads miss, writes
  # and deletes return false), or raises with +raising+.
  let(:outage_store_class) do
    Class.new(ActiveSupport::Cache::MemoryStore) do
      attr_accessor :down, :raising

      %i[read_entry write_entry delete_entry].each do |hook|
        define_method(hook) do |*args, **options|
          raise IOError, "L2 unreachable" if down && raising
          return (hook == :read_entry ? nil : false) if down

          super(*args, **options)
        end
      end
    end
  end
  let(:l2) { outage_store_class.new }
  let(:fail_safe) { { max_stale: 60, backoff: 0 } }
  let(:store) { described_class.new(sync: false, cache: l2, fail_safe: fail_safe) }
  let(:events) { [] }

  before do
    subscriber = ActiveSupport::Notifications.subscribe("cache_fetch_hit.active_support") do |*, payload|
      events << payload
    end
    @subscribers = [subscriber]
  end

  after { @subscribers.each { |subscriber| ActiveSupport::Notifications.unsubscribe(subscriber) } }

  def failing_fetch(key = "settings", **options)
    store.fetch(key, **options) { raise IOError, "the backend is down" }
  end

  # Writes +value+ under +key+ expiring in 10 s, then moves past its expiry.
  def write_and_expire(key = "settings", value = { "theme" => "dark" }, by: 11)
    store.write(key, value, expires_in: 10)
    travel by
  end

  it "is off by default: an expired entry's failing refresh raises" do
    store = described_class.new(sync: false, cache: l2)
    store.write("settings", "v", expires_in: 10)
    travel 11
    expect { store.fetch("settings") { raise IOError, "down" } }.to raise_error(IOError)
  end

  it "returns the expired value when the block raises, reports it as a stale fetch hit and counts it" do
    write_and_expire
    expect(failing_fetch).to eq("theme" => "dark")
    expect(events.last).to include(key: "settings", stale: true)
    expect(store.stats).to include(fail_safe_hits: 1, fail_safe_backoffs: 0)
  end

  it "keeps the expired entry out of read, read_multi and exist?, and those reads leave it for fetch" do
    write_and_expire
    expect(store.read("settings")).to be_nil
    expect(store.read("settings", version: nil)).to be_nil # ActiveSupport's general path
    expect(store.read_multi("settings")).to eq({})
    expect(store.exist?("settings")).to be(false)
    expect(failing_fetch).to eq("theme" => "dark")
  end

  it "keeps the stale copy in L1 through L2 failing (a read miss, a write refused)" do
    write_and_expire
    l2.down = true
    expect(failing_fetch).to eq("theme" => "dark")
    expect(failing_fetch).to eq("theme" => "dark")
  end

  it "serves the copy L2 keeps when L1 no longer has it (another process, a restart)" do
    write_and_expire
    fresh_process = described_class.new(sync: false, cache: l2, fail_safe: fail_safe)
    expect(fresh_process.fetch("settings") { raise IOError, "down" }).to eq("theme" => "dark")
    l2.down = true # the fetch above put the stale copy in its L1
    expect(fresh_process.fetch("settings") { raise IOError, "down" }).to eq("theme" => "dark")
  end

  it "raises once the entry expired more than max_stale ago" do
    write_and_expire(by: 10 + 61)
    expect { failing_fetch }.to raise_error(IOError, "the backend is down")
  end

  it "raises for a key that was deleted, cleared or deleted by pattern: only an expired entry is served" do
    %w[deleted cleared matched].each { |key| store.write(key, "old", expires_in: 10) }
    travel 11
    store.delete("deleted")
    expect { failing_fetch("deleted") }.to raise_error(IOError)
    store.delete_matched("match*")
    expect { failing_fetch("matched") }.to raise_error(IOError)
    store.clear
    expect { failing_fetch("cleared") }.to raise_error(IOError)
    expect(store.stats[:fail_safe_hits]).to eq(0)
  end

  it "serves a tagged entry while its tags are current, and never once a tag was invalidated" do
    store.write("card", "v1", expires_in: 10, tags: %w[user:1 org:7])
    store.write("other", "v2", expires_in: 10, tags: %w[org:8])
    travel 11
    expect(failing_fetch("other")).to eq("v2")
    store.invalidate_tags("org:7")
    expect { failing_fetch("card") }.to raise_error(IOError)
    expect(store.stats).to include(fail_safe_hits: 1)
  end

  it "raises for a key that was never cached" do
    expect { failing_fetch("never") }.to raise_error(IOError)
  end

  it "does not serve an entry of another version" do
    store.write("versioned", "v1", expires_in: 10, version: "1")
    travel 11
    expect { failing_fetch("versioned", version: "2") }.to raise_error(IOError)
    expect(failing_fetch("versioned", version: "1")).to eq("v1")
  end

  it "is turned off per call with fail_safe: false, which leaves the stale copy to other fetches" do
    write_and_expire
    expect { failing_fetch(fail_safe: false) }.to raise_error(IOError)
    expect(failing_fetch).to eq("theme" => "dark")
  end

  it "takes max_stale per call" do
    write_and_expire(by: 10 + 30)
    expect { failing_fetch(fail_safe: { max_stale: 20 }) }.to raise_error(IOError)
    expect(failing_fetch(fail_safe: { max_stale: 40 })).to eq("theme" => "dark")
  end

  it "does not serve a forced fetch, which asked for a new value" do
    write_and_expire
    expect { failing_fetch(force: true) }.to raise_error(IOError)
  end

  it "returns the block's value when only storing it fails" do
    write_and_expire
    l2.down = true
    l2.raising = true
    expect(store.fetch("settings") { "fresh" }).to eq("fresh")
    expect(store.stats[:fail_safe_hits]).to eq(0)
  end

  it "writes the refreshed value when the block succeeds" do
    write_and_expire
    expect(store.fetch("settings", expires_in: 10) { "new" }).to eq("new")
    expect(store.read("settings")).to eq("new")
  end

  it "serves the stale value with race_condition_ttl too" do
    store.write("raced", "old", expires_in: 10, race_condition_ttl: 5)
    travel 12
    expect(store.fetch("raced", race_condition_ttl: 5) { raise IOError, "down" }).to eq("old")
  end

  it "keeps entries within max_stale through cleanup" do
    write_and_expire
    store.cleanup
    expect(failing_fetch).to eq("theme" => "dark")
  end

  it "keeps the stale copy without an L2" do
    store = described_class.new(sync: false, fail_safe: fail_safe)
    store.write("solo", "v", expires_in: 10)
    travel 11
    expect(store.read("solo")).to be_nil
    expect(store.fetch("solo") { raise IOError, "down" }).to eq("v")
  end

  context "with a back-off" do
    let(:fail_safe) { { max_stale: 60, backoff: 0.3 } }

    it "serves the stale value without running the block until the back-off ends, then tries again" do
      write_and_expire
      calls = 0
      block = lambda do |*|
        calls += 1
        raise IOError, "down"
      end
      expect(store.fetch("settings", &block)).to eq("theme" => "dark")
      expect(store.fetch("settings", &block)).to eq("theme" => "dark")
      expect(calls).to eq(1)
      expect(store.stats).to include(fail_safe_hits: 2, fail_safe_backoffs: 1)

      wait_until(timeout: 5, message: "the block was never tried again after the back-off") do
        store.fetch("settings", &block)
        calls == 2
      end
      expect(store.fetch("settings") { "back" }).to eq("theme" => "dark") # backing off again
      wait_until(timeout: 5, message: "the refresh never ran after the back-off") do
        store.fetch("settings", expires_in: 10) { "back" } == "back"
      end
      expect(store.read("settings")).to eq("back")
    end

    it "lets threads waiting on a failed single-flight take the stale value without running the block" do
      write_and_expire
      calls = Queue.new
      started = Concurrent::Event.new
      release = Concurrent::Event.new
      block = lambda do |*|
        calls << :ran
        started.set
        release.wait(5)
        raise IOError, "down"
      end
      runner = Thread.new { store.fetch("settings", &block) }
      expect(started.wait(5)).to be(true)
      waiters = Array.new(3) { Thread.new { store.fetch("settings", &block) } }
      wait_until(message: "the waiters never boarded") { store.stats[:fetch_waits] >= 3 }
      release.set

      expect([runner, *waiters].map(&:value)).to all(eq("theme" => "dark"))
      expect(calls.size).to eq(1)
      expect(store.stats).to include(fail_safe_hits: 4, fail_safe_backoffs: 3)
    end
  end

  describe "options" do
    it "rejects a fail_safe: that is not false, nil or { max_stale:, backoff: }, naming it" do
      [true, 60, { backoff: 1 }, { max_stale: 0 }, { max_stale: -1 }, { max_stale: "1h" },
       { max_stale: 60, backoff: -1 }, { max_stale: 60, retry: 1 }].each do |bad|
        expect { described_class.new(sync: false, fail_safe: bad) }
          .to raise_error(SyncedMemoryStore::ConfigurationError, /fail_safe:/)
      end
    end

    it "rejects a bad fail_safe: per call with an ArgumentError, and one on a store without fail-safe" do
      expect { store.fetch("k", fail_safe: { max_stale: -1 }) { 1 } }.to raise_error(ArgumentError, /max_stale/)
      plain = described_class.new(sync: false)
      expect { plain.fetch("k", fail_safe: { max_stale: 60 }) { 1 } }
        .to raise_error(ArgumentError, /needs fail_safe: on the store/)
      expect(plain.fetch("k", fail_safe: false) { 1 }).to eq(1)
    end

    it "accepts an ActiveSupport::Duration" do
      store = described_class.new(sync: false, fail_safe: { max_stale: 1.hour, backoff: 30.seconds })
      store.write("k", "v", expires_in: 10)
      travel 11
      expect(store.fetch("k") { raise IOError, "down" }).to eq("v")
    end
  end
end
