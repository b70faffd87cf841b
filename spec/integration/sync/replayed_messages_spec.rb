# frozen_string_literal: true

# Someone who can PUBLISH on the channel but does not know the secret cannot
# make a process go back to an older value by publishing a message it
# captured earlier: a signed message binds the channel, its sender and the
# sender's sequence number, and a message not newer than the last one seen
# from its sender is rejected (counted in stats[:rejected]) by every process,
# the writer included. The same bytes on another channel with the same secret
# do not verify there.
RSpec.describe "Sync: replayed messages" do
  include SyncHelpers

  let(:bus) { start_redis }
  let(:signed) { bus_options(bus, cache: :memory_store, secret: "s3cret") }
  let(:peers) { spawn_peers(:writer, :reader, **signed) }
  let(:writer) { peers.first }
  let(:reader) { peers.last }

  before { wait_for_connections(writer, reader) }

  it "never lets a captured message put an older value back, in the writer or anywhere else" do
    off = capture_payload(bus, "off") { writer.write("flag", "off") }
    eventually { reader.l1_read("flag") == [:hit, "off"] }
    writer.write("flag", "on")
    eventually { reader.l1_read("flag") == [:hit, "on"] }
    settle(writer, reader)
    before = [writer.stats, reader.stats]

    expect(publish_raw(bus, off, off)).to eq([2, 2])
    settle(writer, reader)

    expect(writer.l1_read("flag")).to eq([:hit, "on"])
    expect(reader.l1_read("flag")).to eq([:hit, "on"])
    [writer, reader].zip(before).each do |peer, stats|
      expect(peer.stats[:rejected] - stats[:rejected]).to eq(2)
    end
  end

  it "rejects the same bytes on another channel with the same secret" do
    other_channel = "#{channel}-other"
    reader.open_store(:other, signed.merge(channel: other_channel))
    reader.wait_for_connection(10, store: :other)
    reader.write("flag", "kept", store: :other)
    eventually { reader.l1_read("flag", store: :other) == [:hit, "kept"] }
    off = capture_payload(bus, "off") { writer.write("flag", "off") }
    before = reader.stats(store: :other)

    expect(publish_raw(bus, off, on: other_channel)).to eq([1])
    eventually(message: "the other channel's store never judged the message") do
      reader.stats(store: :other)[:rejected] == before[:rejected] + 1
    end

    expect(reader.l1_read("flag", store: :other)).to eq([:miss]).or eq([:hit, "kept"])
    expect(reader.read("flag", store: :other)).to eq("kept")
  end
end
