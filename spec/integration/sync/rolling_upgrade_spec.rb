# frozen_string_literal: true

require "active_support/cache/redis_cache_store"

# During a rolling deploy, processes of neighbouring versions share a bus.
# Every message carries its format; a process reads its own format and the one
# before. A message in a format it cannot read (the next version's) may carry
# a change it would miss, so it is handled as a missed message: L1 is dropped
# (reads go to L2 until it refills) and counted in stats[:missed]. Messages
# of the previous format are read, their writes applied as invalidations
# (that format cannot be told from a replay). The option wire_format: makes a
# store speak another format, for these tests.
RSpec.describe "Sync: processes of neighbouring versions on one bus" do
  include SyncHelpers

  let(:bus) { start_redis }
  let(:l2_server) { start_redis }
  let(:l2) { [:redis_cache_store, { url: l2_server.url, namespace: l2_namespace }] }

  it "drops L1 when a message arrives in a format this version does not read" do
    current, writer = spawn_peers(:current, :writer, **bus_options(bus, cache: l2))
    wait_for_connections(current, writer)
    writer.write("k", "old")
    eventually { current.l1_read("k") == [:hit, "old"] }
    genuine = capture_payload(bus, "fresh") { writer.write("probe", "fresh") }
    settle(writer, current)

    # A process of the next version writes L2 and publishes in its format.
    writer.l2_write("k", "new")
    from_the_future = genuine.dup.tap { |payload| payload.setbyte(3, genuine.getbyte(3) + 1) }
    expect(publish_raw(bus, from_the_future)).to eq([2])

    eventually(message: "the process kept serving what the unreadable message may have changed") do
      current.read("k") == "new"
    end
    expect(current.stats[:missed]).to be >= 1
  end

  it "keeps a process of the current format and one of the next coherent" do
    current = spawn_peer(:current, **bus_options(bus, cache: l2))
    upgraded = spawn_peer(:upgraded, **bus_options(bus, cache: l2, wire_format: 3))
    wait_for_connections(current, upgraded)
    # Each subscription announces itself with a marker in its own format: the
    # upgraded one's costs the current process its L1 (and judges any write
    # it has in flight conflicted). Once that has happened, nothing else from
    # the upgraded process is on the bus.
    eventually(message: "the upgraded process's marker never reached the current one") do
      current.stats[:missed] >= 1
    end
    missed = current.stats[:missed]
    current.write("k", "old")
    eventually { upgraded.l1_read("k") == [:hit, "old"] }

    upgraded.write("k", "from the next version")
    eventually(message: "the current process never stopped serving the old value") do
      current.read("k") == "from the next version"
    end
    expect(current.stats[:missed]).to be > missed

    current.write("k", "from the current version")
    eventually(message: "the upgraded process never read the current format") do
      upgraded.l1_read("k") == [:hit, "from the current version"]
    end
    expect(upgraded.stats[:missed]).to eq(0)
  end

  it "reads the previous format, applying its writes as invalidations" do
    current = spawn_peer(:current, **bus_options(bus, cache: l2))
    previous = spawn_peer(:previous, **bus_options(bus, cache: l2, wire_format: 1))
    wait_for_connections(current, previous)
    current.write("k", "old")
    eventually { current.l1_read("k") == [:hit, "old"] }

    previous.write("k", "from the previous version")
    eventually(message: "the previous format's write never reached the current process") do
      current.l1_read("k") == [:miss]
    end
    expect(current.read("k")).to eq("from the previous version")
    expect(current.stats[:missed]).to eq(0)
  end
end
