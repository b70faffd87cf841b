# frozen_string_literal: true

require "active_support/cache/redis_cache_store"

# The bus's redis-server killed (SIGKILL, then restarted on the same port) or
# frozen (SIGSTOP, then SIGCONT) while a writer changes a key in the L2 both
# processes share (on another redis-server, which keeps running). L1 is
# trusted only until the send time of the last answered PING plus
# health_timeout, so a read that starts later than health_timeout after the
# write returned must not come from the reader's stale L1. When the bus is
# back, the reader resubscribes by itself and sync works again.
RSpec.describe "Sync: the bus's Redis going away and coming back" do
  include SyncHelpers

  let(:health_timeout) { 0.15 }
  # Slack for scheduling on a busy machine; the bound itself is exact (trust
  # ends at most health_timeout after the bus stopped answering, and the bus
  # stopped before the write).
  let(:margin) { 0.1 }

  let(:bus) { start_redis }
  let(:l2_server) { start_redis }
  let(:peers) do
    spawn_peers(:writer, :reader,
                **bus_options(bus, cache: [:redis_cache_store, { url: l2_server.url, namespace: l2_namespace }],
                                   health_interval: 0.02, health_timeout: health_timeout, reconnect_max: 0.1))
  end
  let(:writer) { peers.first }
  let(:reader) { peers.last }

  before do
    wait_for_connections(writer, reader)
    writer.write("k", "v1")
    eventually { reader.l1_read("k") == [:hit, "v1"] }
  end

  # Starts the outage while the reader reads k in a loop, writes v2 in the
  # writer, lets the reader go on well past the trust deadline and returns
  # [when the write returned, the reader's record].
  def write_during_outage(&outage)
    reader.start_reader("k", mode: :sleepy, interval: 0.001)
    outage.call
    result, _started, written = writer.timed_write("k", "v2")
    expect(result).to be(true) # L2 is up: only the bus is gone
    eventually(timeout: 10, message: "the reader stopped reading") do
      reader.reader_progress.first > written + health_timeout + margin + 0.3
    end
    [written, reader.stop_reader]
  end

  # Start time of the last read that returned something other than v2, in
  # milliseconds after the write returned.
  def last_stale_read(written, runs)
    last_start = runs.reject { |value, *| value == "v2" }.map { |run| run[3] }.max
    last_start && ((last_start - written) * 1000).round(1)
  end

  def expect_no_stale_reads_after(written, record, label)
    runs = record[:runs]
    expect(runs.first.first).to eq("v1")
    last_stale = last_stale_read(written, runs)
    puts "\n[sync outage] #{label}: the last read returning the old value started #{last_stale} ms after the " \
         "write returned (bound: health_timeout #{health_timeout * 1000} ms + margin #{margin * 1000} ms)"
    expect(last_stale).to be <= (health_timeout + margin) * 1000
    expect(runs.last.first).to eq("v2")
    expect(runs.last[3]).to be > written + health_timeout + margin
  end

  def expect_reconnection
    eventually(timeout: 10, message: "the reader never resubscribed") { reader.connected? && writer.connected? }
    expect(reader.stats[:reconnects]).to be >= 1
    # A fresh subscription starts with an empty L1: nothing from before the outage.
    expect(reader.l1_read("k")).to eq([:miss]).or eq([:hit, "v2"])
    expect(reader.read("k")).to eq("v2")
  end

  def expect_sync_to_resume
    expect_reconnection

    writer.write("fresh", "after the outage")
    eventually(message: "a write after the outage never reached the reader's L1") do
      reader.l1_read("fresh") == [:hit, "after the outage"]
    end
    # The writer lost track of its v2 change during the outage, so its next
    # change to k may be invalidated everywhere after shipping (the README's
    # conflict rule): the reader holds v3 or nothing, never an older value.
    writer.write("k", "v3")
    settle(writer, reader)
    expect(reader.l1_read("k")).to eq([:hit, "v3"]).or eq([:miss])
    expect(reader.read("k")).to eq("v3")
  end

  it "stops serving the stale value within health_timeout of a SIGKILL, then resubscribes after a restart" do
    written, record = write_during_outage { bus.kill }

    expect_no_stale_reads_after(written, record, "SIGKILL")
    expect(reader.connected?).to be(false)

    bus.start
    expect_sync_to_resume
  end

  it "stops serving the stale value within health_timeout of a SIGSTOP, then resubscribes after SIGCONT" do
    written, record = write_during_outage { bus.pause }

    expect_no_stale_reads_after(written, record, "SIGSTOP")
    expect(reader.stats[:trusted]).to be(false)

    bus.resume
    expect_sync_to_resume
  end

  # Not the bus this time but the reading process itself: on Linux a socket read
  # with a timeout fails with EINTR after the process is stopped and continued,
  # which the subscriber must not take for a broken connection (that would cost
  # a resubscription and the whole L1).
  it "keeps its subscription and its L1 when the reading process is stopped and continued" do
    3.times do
      Process.kill(:STOP, reader.pid)
      sleep 0.05 # the stop itself is what is tested; 50 ms is well inside health_timeout
      Process.kill(:CONT, reader.pid)
    end

    # While stopped the reader could not answer PINGs, so its L1 may be
    # untrusted until the next PONG; with no new write, v1 can only come back
    # from the L1 it kept.
    eventually(message: "the reader's L1 lost v1") { reader.l1_read("k") == [:hit, "v1"] }
    expect(reader.stats).to include(reconnects: 0, connected: true)
    writer.write("k", "v2")
    eventually { reader.l1_read("k") == [:hit, "v2"] }
  end
end
