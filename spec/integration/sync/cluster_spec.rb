# frozen_string_literal: true

require "active_support/cache/redis_cache_store"
require_relative "../../support/redis_cluster"

# The bus on a Redis Cluster (3 primaries, 3 replicas): sharded pub/sub at
# the primary that owns the channel's slot. Two processes share an L2 on a
# plain redis-server of its own. When that primary dies (its replica takes
# over) or the slot is moved to another primary, no process may keep serving
# what L2 no longer holds for longer than health_timeout, and sync resumes by
# itself.
RSpec.describe "Sync: the bus on a Redis Cluster", :cluster do
  include SyncHelpers

  let(:health_timeout) { 0.15 }
  # Slack for scheduling on a busy machine (as in bus_outage_spec.rb).
  let(:margin) { 0.1 }

  # One cluster for the group: making one takes seconds.
  before(:context) { @cluster = RedisCluster.new.start }
  after(:context) { @cluster&.stop }

  let(:cluster) { @cluster }
  let(:l2_server) { start_redis }
  let(:peers) do
    spawn_peers(:writer, :reader,
                redis: { cluster: cluster.seeds }, channel: channel,
                cache: [:redis_cache_store, { url: l2_server.url, namespace: l2_namespace }],
                health_interval: 0.02, health_timeout: health_timeout, reconnect_max: 0.1)
  end
  let(:writer) { peers.first }
  let(:reader) { peers.last }
  let(:slot) { cluster.slot_of(channel) }

  before do
    wait_for_connections(writer, reader)
    writer.write("k", "v1")
    eventually { reader.l1_read("k") == [:hit, "v1"] }
  end

  # Runs +disruption+ while the reader reads k in a loop, writes v2 in the
  # writer right after it, and returns the reader's record with when the write returned.
  def write_during(&disruption)
    reader.start_reader("k", mode: :sleepy, interval: 0.001)
    disruption.call
    result, _started, written = writer.timed_write("k", "v2")
    expect(result).to be(true)
    eventually(timeout: 15, message: "the reader stopped reading") do
      reader.reader_progress.first > written + health_timeout + margin + 0.3
    end
    [written, reader.stop_reader]
  end

  def expect_no_stale_reads_after(written, record, label)
    runs = record[:runs]
    stale = runs.reject { |value, *| value == "v2" }.map { |run| run[3] }.max
    late = stale && ((stale - written) * 1000).round(1)
    puts "\n[cluster] #{label}: the last read returning the old value started #{late.inspect} ms after the write " \
         "returned (bound: health_timeout #{health_timeout * 1000} ms + margin #{margin * 1000} ms)"
    expect(late.to_f).to be <= (health_timeout + margin) * 1000
    expect(runs.last.first).to eq("v2")
  end

  def expect_sync_to_resume
    eventually(timeout: 20, message: "the processes never resubscribed") { reader.connected? && writer.connected? }
    writer.write("fresh", "after")
    eventually(timeout: 10, message: "a write never reached the reader's L1") do
      reader.l1_read("fresh") == [:hit, "after"]
    end
    writer.write("k", "v3")
    settle(writer, reader)
    expect(reader.l1_read("k")).to eq([:hit, "v3"]).or eq([:miss])
    expect(reader.read("k")).to eq("v3")
  end

  it "keeps two processes in sync with sharded pub/sub at the primary of the channel's slot" do
    owner = cluster.owner_of(slot)
    numsub = Redis.new(url: "redis://127.0.0.1:#{owner.port}").call("PUBSUB", "SHARDNUMSUB", channel)
    expect(numsub).to eq([channel, 2])

    writer.write("user:1", { "name" => "Ada" })
    eventually { reader.l1_read("user:1") == [:hit, { "name" => "Ada" }] }
    writer.delete("user:1")
    eventually { reader.l1_read("user:1") == [:miss] }
    expect(reader.stats).to include(reconnects: 0, missed: 0, rejected: 0)
  end

  context "with an ACL user allowed only the channel and the commands the bus sends" do
    let(:acl) do
      ["bus", "on", ">bus-password", "resetchannels", "&#{channel}", "resetkeys", "-@all",
       "+hello", "+auth", "+ssubscribe", "+spublish", "+cluster|slots"]
    end
    let(:peers) do
      cluster.servers.select(&:running?).each { |server| server.command("ACL", "SETUSER", *acl) }
      spawn_peers(:writer, :reader,
                  redis: { cluster: cluster.seeds, username: "bus", password: "bus-password" }, channel: channel,
                  cache: [:redis_cache_store, { url: l2_server.url, namespace: l2_namespace }])
    end

    it "keeps two processes in sync" do
      writer.write("flag", "on")
      eventually { reader.l1_read("flag") == [:hit, "on"] }
      expect(reader.stats).to include(connected: true, last_error: nil, reconnects: 0)
    end
  end

  context "with the channel's log on (bus_log:)" do
    let(:peers) do
      spawn_peers(:writer, :reader,
                  redis: { cluster: cluster.seeds }, channel: channel, bus_log: true, secret: "bus secret",
                  cache: [:redis_cache_store, { url: l2_server.url, namespace: l2_namespace }],
                  health_interval: 0.02, health_timeout: health_timeout, reconnect_max: 0.1)
    end

    it "logs at the primary of the channel's slot and resumes from there when a subscription drops" do
      owner = cluster.owner_of(slot)
      log = Redis.new(url: "redis://127.0.0.1:#{owner.port}")
      expect(log.xlen("{#{channel}}:log")).to be_positive
      expect(log.call("CLUSTER", "KEYSLOT", "{#{channel}}:log")).to eq(slot)

      reconnects = reader.stats[:reconnects]
      expect(owner.command("CLIENT", "KILL", "TYPE", "pubsub")).to match(/\A:[1-9]/)
      writer.write("k", "v2")
      eventually(timeout: 10) { reader.stats[:reconnects] > reconnects && reader.stats[:trusted] }
      eventually { reader.l1_read("k") == [:hit, "v2"] }
      expect(reader.stats).to include(missed: 0, rejected: 0)
      expect(reader.stats[:resumed]).to be >= 1
    ensure
      log&.close
    end
  end

  it "serves nothing stale past health_timeout when the primary dies, and follows the promoted replica" do
    primary = cluster.owner_of(slot)
    written, record = write_during { cluster.fail_over(primary, slot) }

    expect_no_stale_reads_after(written, record, "primary killed")
    expect_sync_to_resume
    expect(cluster.owner_of(slot)).not_to eq(primary)
    expect(reader.stats[:reconnects]).to be >= 1
  end

  it "serves nothing stale when the channel's slot moves to another primary, and follows it" do
    source = cluster.owner_of(slot)
    written, record = write_during { cluster.move_slot(slot) }

    expect_no_stale_reads_after(written, record, "slot moved")
    expect_sync_to_resume
    expect(cluster.owner_of(slot)).not_to eq(source)
  end
end
