# frozen_string_literal: true

# Store#close: publishes what is queued, stops the store's two native bus
# threads (and only its own), is idempotent, and leaves a store every call of
# which raises SyncedMemoryStore::ClosedError.
RSpec.describe "Sync: closing a store" do
  include SyncHelpers

  let(:bus) { start_redis }
  let(:peers) { spawn_peers(:closer, :other, **bus_options(bus, cache: :memory_store)) }
  let(:closer) { peers.first }
  let(:other) { peers.last }

  before { wait_for_connections(closer, other) }

  it "stops the store's sms- threads, leaves another store's running, and is idempotent" do
    closer.open_store(:second, bus_options(bus, cache: :memory_store))
    closer.wait_for_connection(10, store: :second)
    eventually(message: "two stores should run four sms- threads") { closer.sms_threads == 4 }

    expect(closer.close).to be_nil

    # close joins the threads; the kernel may list a joined thread a moment longer.
    eventually(message: "the closed store's threads are still running") { closer.sms_threads == 2 }
    expect(closer.close).to be_nil
    expect(closer.closed?).to be(true)
    expect(closer.connected?(store: :second)).to be(true)
    expect(closer.sms_threads).to eq(2)

    closer.close(store: :second)
    eventually(message: "the second store's threads are still running") { closer.sms_threads.zero? }
  end

  it "closes its connections to Redis, not later when Ruby collects the store" do
    clients = lambda do
      redis = Redis.new(url: bus.url, timeout: 5, reconnect_attempts: 0)
      redis.info("clients").fetch("connected_clients").to_i
    ensure
      redis&.close
    end
    before = clients.call
    closer.open_store(:second, bus_options(bus, cache: :memory_store))
    closer.wait_for_connection(10, store: :second)
    closer.write("k", "v", store: :second)
    expect(closer.flush_sync(5, store: :second)).to be(true)
    expect(clients.call).to be > before

    closer.close(store: :second)

    eventually(message: "the closed store's connections to Redis are still open") { clients.call == before }
  end

  it "publishes what was queued before closing" do
    closer.write("last-words", "sent on close")
    closer.close

    eventually(message: "the write queued before close never arrived") do
      other.l1_read("last-words") == [:hit, "sent on close"]
    end
  end

  it "raises ClosedError from every call afterwards" do
    closer.write("k", "v")
    closer.close

    calls = {
      read: ["k"], write: %w[k v2], delete: ["k"], exist?: ["k"], read_multi: ["k"], write_multi: [{ "k" => "v" }],
      increment: ["n"], decrement: ["n"], clear: [], delete_matched: ["*"], stats: [], connected?: [],
      wait_for_connection: [0.1], flush_sync: [0.1]
    }
    aggregate_failures do
      calls.each do |method, args|
        expect { closer.public_send(method, *args) }.to raise_error(SyncedMemoryStore::ClosedError), method.to_s
      end
      expect { closer.fetch("k", "computed") }.to raise_error(SyncedMemoryStore::ClosedError)
    end
  end

  it "changes nothing, not even L2, when a call raises ClosedError" do
    closer.write_multi({ "a" => "1", "user:1" => "2", "b" => "3" })
    closer.close

    aggregate_failures do
      expect { closer.clear }.to raise_error(SyncedMemoryStore::ClosedError)
      expect { closer.delete_matched("user:*") }.to raise_error(SyncedMemoryStore::ClosedError)
      expect { closer.delete("b", silent: true) }.to raise_error(SyncedMemoryStore::ClosedError)
      expect { closer.write("c", "4", silent: true) }.to raise_error(SyncedMemoryStore::ClosedError)
      expect(%w[a user:1 b c].map { |key| closer.l2_read(key) }).to eq(["1", "2", "3", nil])
    end
  end
end
