# frozen_string_literal: true

# A change made while the store's publisher thread is idle is sent by the
# thread that made it, on the publisher's connection, and the publisher reads
# Redis's answer later (ext/.../bus/direct.rs). What must hold: such changes
# reach other processes as fast as ever and are counted published once
# answered; a burst that finds answers outstanding or the publisher busy goes
# through the publisher, and nothing overtakes anything (a receiver would
# reject a sender's change numbered below one it already applied, and drop
# its L1 as after a missed message).
RSpec.describe "Sync: changes sent by the thread that made them" do
  include SyncHelpers

  let(:bus) { start_redis }
  let(:peers) { spawn_peers(:writer, :reader, **bus_options(bus, cache: :memory_store)) }
  let(:writer) { peers.first }
  let(:reader) { peers.last }

  before do
    wait_for_connections(writer, reader)
    # The first batch on a connection goes through the publisher thread.
    writer.write("first", 0)
    writer.flush_sync(5)
  end

  it "sends a change made while the publisher is idle at once, and counts it published once answered" do
    before = writer.stats.values_at(:published, :published_directly)
    10.times do |i|
      writer.write("setting", i)
      eventually(message: "write #{i} never reached the reader") { reader.l1_read("setting") == [:hit, i] }
    end

    expect(writer.flush_sync(5)).to be(true)
    published, directly = writer.stats.values_at(:published, :published_directly).zip(before).map { |a, b| a - b }
    expect([published, directly]).to match([10, be_between(1, 10)])
    expect(reader.stats).to include(rejected: 0, missed: 0)
  end

  it "keeps every change in order when a burst mixes direct sends and the publisher's batches" do
    # Mostly back to back: answers pile up, the publisher takes over, then
    # finds itself idle again at each pause.
    values = (1..600).to_a
    gaps = values.map { |i| (i % 50).zero? ? 0.002 : 0 }
    writer.write_series("burst", values, gaps)
    # Values larger than a direct send carries go through the publisher.
    writer.write_many(prefix: "bulk-", count: 300, sizes: [16, 6000])

    expect(writer.flush_sync(10)).to be(true)
    eventually(message: "the burst never ended at its last value") { reader.l1_read("burst") == [:hit, 600] }
    eventually(message: "the bulk writes never all arrived") { reader.l1_read("bulk-299") == [:hit, "v" * 6000] }
    stats = writer.stats
    expect(stats[:published_directly]).to be_between(1, stats[:published] - 1)
    expect(reader.stats).to include(rejected: 0, missed: 0, reconnects: 0)
  end

  it "settles a change sent while the bus is stopped once it runs again" do
    writer.write("flag", "on")
    eventually { reader.l1_read("flag") == [:hit, "on"] }
    directly = writer.stats[:published_directly]

    bus.pause
    begin
      writer.write("flag", "off")
    ensure
      bus.resume
    end

    expect(writer.flush_sync(10)).to be(true)
    expect(writer.stats[:published_directly]).to be > directly
    eventually(timeout: 10, message: "the reader kept the replaced value") { reader.read("flag") != "on" }
    expect(reader.l1_read("flag")).not_to eq([:hit, "on"])
  end
end
