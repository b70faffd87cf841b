# frozen_string_literal: true

# Refresh-ahead (Store::RefreshAhead): a fetch hit on an entry past the given
# fraction of its life returns the cached value and refreshes it in the
# background. One process, no bus; time moved with travel, refreshes waited
# for with deadlines.
RSpec.describe "SyncedMemoryStore::Store refresh_ahead:" do
  def store(**options)
    SyncedMemoryStore::Store.new(sync: false, **options).tap { |made| stores << made }
  end

  let(:stores) { [] }
  let(:runs) { Queue.new }

  after { stores.each(&:close) }

  # A fetch of +key+ whose block records that it ran and returns +value+.
  def fetch(cache, key, value, **options)
    cache.fetch(key, expires_in: 10, **options) do
      runs << value
      value
    end
  end

  # The refresh threads alive in this process.
  def refresh_threads
    Thread.list.count { |thread| thread.name == "synced_memory_store refresh-ahead" && thread.alive? }
  end

  def stats(cache)
    cache.stats.slice(:refreshes_ahead, :refresh_ahead_skipped, :refresh_ahead_errors)
  end

  it "serves a hit late in its life at once and refreshes it in the background" do
    cache = store(refresh_ahead: 0.8)
    fetch(cache, "hot", "first")
    # travel stops the clock at whole seconds: 7 s in is before 80% of 10 s, 9 s in past it.
    travel 7
    expect(fetch(cache, "hot", "second")).to eq("first")
    expect(stats(cache)).to include(refreshes_ahead: 0, refresh_ahead_skipped: 0)

    travel 2
    expect(fetch(cache, "hot", "second")).to eq("first")
    wait_until(message: "the refresh never landed") { cache.read("hot") == "second" }
    expect(runs.size).to eq(2)
    expect(stats(cache)).to include(refreshes_ahead: 1, refresh_ahead_errors: 0)

    # The refreshed entry lives a full expires_in from its refresh.
    travel 9
    expect(cache.read("hot")).to eq("second")
  ensure
    travel_back
  end

  it "never refreshes an entry that does not expire, and is off unless asked for" do
    cache = store(refresh_ahead: 0.5)
    cache.fetch("forever") { "v" }
    plain = store
    fetch(plain, "hot", "first")
    travel 9
    expect(cache.fetch("forever") { "w" }).to eq("v")
    expect(fetch(plain, "hot", "second")).to eq("first")
    expect(plain.fetch("hot", expires_in: 10, refresh_ahead: false) { "third" }).to eq("first")
    expect(stats(cache)).to eq(refreshes_ahead: 0, refresh_ahead_skipped: 0, refresh_ahead_errors: 0)
    expect(stats(plain)).to eq(refreshes_ahead: 0, refresh_ahead_skipped: 0, refresh_ahead_errors: 0)
  ensure
    travel_back
  end

  it "is turned off per call with refresh_ahead: false, and on per call with a fraction" do
    cache = store(refresh_ahead: 0.5)
    fetch(cache, "a", "a1")
    travel 6
    expect(fetch(cache, "a", "a2", refresh_ahead: false)).to eq("a1")
    expect(stats(cache)[:refreshes_ahead]).to eq(0)

    plain = store
    fetch(plain, "b", "b1")
    travel 6
    expect(fetch(plain, "b", "b2", refresh_ahead: 0.5)).to eq("b1")
    wait_until { plain.read("b") == "b2" }
    expect(stats(plain)[:refreshes_ahead]).to eq(1)
  ensure
    travel_back
  end

  it "runs one refresh per key however many hits come while it is under way" do
    cache = store(refresh_ahead: 0.5)
    fetch(cache, "hot", "first")
    travel 6
    gate = Queue.new
    refreshes = Queue.new
    hits = Array.new(20) do
      cache.fetch("hot", expires_in: 10) do
        refreshes << :ran
        gate.pop
      end
    end
    expect(hits).to all(eq("first"))
    wait_until { refreshes.size == 1 }
    expect(stats(cache)).to include(refresh_ahead_skipped: 19)
    gate << "second"
    wait_until(message: "the refresh never landed") { cache.read("hot") == "second" }
    expect(refreshes.size).to eq(1)
    expect(stats(cache)).to include(refreshes_ahead: 1)
  ensure
    travel_back
  end

  it "counts a block that raises, keeps the entry and lets it expire as it would have" do
    cache = store(refresh_ahead: 0.5)
    fetch(cache, "hot", "first")
    travel 6
    expect(cache.fetch("hot", expires_in: 10) { raise "service down" }).to eq("first")
    wait_until(message: "the error was never counted") { stats(cache)[:refresh_ahead_errors] == 1 }
    expect(cache.read("hot")).to eq("first")
    travel 5
    expect(cache.read("hot")).to be_nil
    expect(fetch(cache, "hot", "second")).to eq("second")
  ensure
    travel_back
  end

  it "writes the refreshed value with the fetch's options (tags, version, namespace)" do
    cache = store(refresh_ahead: 0.5, namespace: "ns")
    cache.fetch("card", expires_in: 10, tags: "user:1", version: "v1") { "old" }
    travel 6
    expect(cache.fetch("card", expires_in: 10, tags: "user:1", version: "v1") { "new" }).to eq("old")
    wait_until(message: "the refresh never landed") { cache.read("card", version: "v1") == "new" }
    cache.invalidate_tags("user:1")
    expect(cache.read("card", version: "v1")).to be_nil
  ensure
    travel_back
  end

  it "sends cache_refresh_ahead with the outcome, and refreshes on ActiveSupport's path too" do
    cache = store(refresh_ahead: 0.5)
    fetch(cache, "hot", "first")
    travel 6
    events = Queue.new
    subscriber = ActiveSupport::Notifications.subscribe("cache_refresh_ahead.active_support") do |*, payload|
      events << payload
    end
    # A listener sends the fetch down ActiveSupport's path.
    expect(fetch(cache, "hot", "second")).to eq("first")
    wait_until(message: "no cache_refresh_ahead event") { !events.empty? }
    expect(events.pop).to include(key: "hot", outcome: :refreshed)
    expect(cache.read("hot")).to eq("second")
  ensure
    ActiveSupport::Notifications.unsubscribe(subscriber) if subscriber
    travel_back
  end

  it "leaves alone an entry deleted before its refresh's turn" do
    cache = store(refresh_ahead: 0.5)
    %w[slow other hot].each { |key| fetch(cache, key, "first") }
    travel 6
    gate = Queue.new
    started = Queue.new
    # Both pool threads held by slow refreshes, so the refresh of "hot" waits in the queue.
    %w[slow other].each do |key|
      cache.fetch(key, expires_in: 10) do
        started << key
        gate.pop
      end
    end
    wait_until { started.size == 2 }
    expect(fetch(cache, "hot", "second")).to eq("first")
    cache.delete("hot")
    2.times { gate << "done" }
    wait_until(message: "the queued refresh never had its turn") { stats(cache)[:refresh_ahead_skipped] == 1 }
    expect(cache.read("hot")).to be_nil
    expect(stats(cache)).to include(refreshes_ahead: 2)
  ensure
    travel_back
  end

  it "refuses a bad fraction with a ConfigurationError, per call with an ArgumentError" do
    [0, 1, 1.5, -0.2, "0.8", true].each do |setting|
      expect { store(refresh_ahead: setting) }
        .to raise_error(SyncedMemoryStore::ConfigurationError, /\Arefresh_ahead: .*#{Regexp.escape(setting.inspect)}/)
    end
    cache = store
    fetch(cache, "k", "v")
    expect { cache.fetch("k", refresh_ahead: 2) { "w" } }.to raise_error(ArgumentError, /\Arefresh_ahead: .*2/)
  end

  it "refreshes the key the fetch read under a Proc namespace, whatever the pool's thread sees" do
    cache = store(refresh_ahead: 0.5, namespace: -> { Thread.current[:tenant] || "nobody" })
    Thread.current[:tenant] = "acme"
    fetch(cache, "users", "first")
    travel 6
    expect(fetch(cache, "users", "second")).to eq("first")
    wait_until(message: "the refresh never ran") { stats(cache)[:refreshes_ahead] == 1 }
    expect(cache.read("users")).to eq("second")
    Thread.current[:tenant] = nil
    expect(cache.read("users")).to be_nil
  ensure
    Thread.current[:tenant] = nil
    travel_back
  end

  it "never refreshes a fetch with expires_at:, on ActiveSupport's path too" do
    cache = store(refresh_ahead: 0.5)
    expires_at = Time.now + 10
    # A version sends the fetch down ActiveSupport's path, whose option
    # merging turns expires_at: into an expires_in.
    cache.fetch("daily", expires_at: expires_at, version: 1) { "first" }
    travel 6
    expect(cache.fetch("daily", expires_at: expires_at, version: 1) { "second" }).to eq("first")
    expect(cache.fetch("daily", expires_at: expires_at) { "second" }).to eq("first")
    # A refresh offered starts the pool's first thread at once: none did.
    expect(refresh_threads).to eq(0)
    expect(stats(cache)).to eq(refreshes_ahead: 0, refresh_ahead_skipped: 0, refresh_ahead_errors: 0)
  ensure
    travel_back
  end

  it "writes nothing for a refresh whose block returns after the exit-time settle" do
    l2 = ActiveSupport::Cache::MemoryStore.new
    cache = store(refresh_ahead: 0.5, cache: l2)
    fetch(cache, "hot", "first")
    travel 6
    gate = Queue.new
    started = Queue.new
    cache.fetch("hot", expires_in: 10) do
      started << true
      gate.pop
    end
    started.pop
    # As at exit: the store settles, then the process would be gone.
    SyncedMemoryStore.settle_all(0.5)
    gate << "late"
    wait_until(message: "the refresh never ended") { refresh_threads.zero? }
    expect(l2.read("hot")).to eq("first")
    expect(stats(cache)).to include(refreshes_ahead: 0, refresh_ahead_skipped: 1)
  ensure
    travel_back
  end

  it "stops its threads on close, and a forked child starts with none of its parent's work" do
    cache = store(refresh_ahead: 0.5)
    fetch(cache, "hot", "first")
    travel 6
    fetch(cache, "hot", "second")
    wait_until { cache.read("hot") == "second" }
    threads = -> { refresh_threads }
    expect(threads.call).to eq(1)
    reader, writer = IO.pipe
    pid = fork do
      reader.close
      writer.write([threads.call, cache.stats[:refreshes_ahead]].join(","))
      exit!(0)
    end
    writer.close
    expect(reader.read).to eq("0,0")
    Process.wait(pid)
    cache.close
    expect(threads.call).to eq(0)
  ensure
    travel_back
  end
end
