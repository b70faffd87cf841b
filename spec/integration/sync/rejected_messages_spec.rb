# frozen_string_literal: true

require "redis"

# Whatever else is published on the channel (sent here with the redis gem) is
# rejected before anything is applied and counted in stats[:rejected] exactly
# once each, and sync keeps working. Payloads that are not messages of this
# gem at all leave L1 alone. Ones that look like this gem's messages but
# cannot be read (truncated, oversized, a format this version does not read,
# signed with another secret or not at all) may be a peer's change this
# process cannot apply, so they count in stats[:missed] too and L1 is dropped:
# reads go to L2 and nothing stale stays.
RSpec.describe "Sync: messages that are not from a trusted store" do
  include SyncHelpers

  let(:bus) { start_redis }

  context "without secrets" do
    let(:peers) { spawn_peers(:sender, :receiver, **bus_options(bus, cache: :memory_store)) }
    let(:sender) { peers.first }
    let(:receiver) { peers.last }

    before do
      wait_for_connections(sender, receiver)
      peers.each { |peer| peer.flush_sync(5) }
    end

    it "rejects and counts payloads that are not its messages, keeping L1, then keeps syncing" do
      sender.write("k", "kept")
      eventually { receiver.l1_read("k") == [:hit, "kept"] }
      foreign = ["", "hello", "\x00\x01".b + Random.new(RSpec.configuration.seed).bytes(300), "SMS".b]
      settle(sender, receiver)
      before = receiver.stats

      expect(publish_raw(bus, *foreign)).to all(eq(2))
      settle(sender, receiver)

      after = receiver.stats
      expect(after[:rejected] - before[:rejected]).to eq(foreign.size)
      expect(after[:missed]).to eq(before[:missed])
      expect(after).to include(connected: true, reconnects: 0)
      expect(receiver.l1_read("k")).to eq([:hit, "kept"])

      sender.write("k", "after the garbage")
      eventually(message: "sync stopped working after the garbage") do
        receiver.l1_read("k") == [:hit, "after the garbage"]
      end
      expect(receiver.stats[:rejected]).to eq(after[:rejected])
    end

    it "takes truncated, oversized and unreadable messages for missed changes: drops L1, then keeps syncing" do
      sender.write("k", "cached")
      eventually { receiver.l1_read("k") == [:hit, "cached"] }
      genuine = capture_payload(bus, "x" * 200) { sender.write("sample", "x" * 200) }
      expect(genuine).to start_with("SMS".b)
      header = genuine.byteslice(0, 5)
      unreadable = [
        header, # no body
        genuine.byteslice(0, genuine.bytesize / 2), genuine.byteslice(0, genuine.bytesize - 1), # truncated
        genuine + "\x00".b, # trailing bytes
        genuine.dup.tap { |payload| payload.setbyte(3, 0x7f) }, # a format this version does not read
        header + ("\x00".b * (2 * 1024 * 1024)) # over the largest message accepted (~1.1 MiB by default)
      ]
      settle(sender, receiver)
      before = receiver.stats

      expect(publish_raw(bus, *unreadable)).to all(eq(2))
      eventually(message: "the receiver never judged them all") do
        receiver.stats[:rejected] - before[:rejected] == unreadable.size
      end

      after = receiver.stats
      expect(after[:missed] - before[:missed]).to eq(unreadable.size)
      expect(receiver.l1_read("k")).to eq([:miss])
      expect(receiver.read("k")).to be_nil # its own MemoryStore L2 never had it
      expect(after).to include(connected: true, reconnects: 0)

      settle(sender, receiver)
      sender.write("k", "after the garbage")
      eventually(message: "sync stopped working after the garbage") do
        receiver.l1_read("k") == [:hit, "after the garbage"]
      end
    end
  end

  context "with secret: s1" do
    let(:signed) { bus_options(bus, cache: :memory_store, secret: "s1") }
    let(:peers) { spawn_peers(:sender, :receiver, :stranger, **signed) }
    let(:sender) { peers[0] }
    let(:receiver) { peers[1] }
    # A process with a store signing with another secret and one not signing.
    let(:stranger) { peers[2] }

    before do
      stranger.open_store(:wrong, bus_options(bus, cache: :memory_store, secret: "s2"))
      stranger.open_store(:unsigned, bus_options(bus, cache: :memory_store))
      wait_for_connections(sender, receiver)
      %i[main wrong unsigned].each { |store| stranger.wait_for_connection(10, store: store) }
      [sender, receiver].each { |peer| peer.flush_sync(5) }
      %i[main wrong unsigned].each { |store| stranger.flush_sync(5, store: store) }
      settle(sender, receiver)
    end

    it "rejects a message signed with another secret and one not signed, applies neither, and drops L1" do
      sender.write("cached", "here")
      eventually { receiver.l1_read("cached") == [:hit, "here"] }
      before = receiver.stats

      stranger.write("forged", "signed with s2", store: :wrong)
      stranger.flush_sync(5, store: :wrong)
      stranger.write("unsigned", "no signature", store: :unsigned)
      stranger.flush_sync(5, store: :unsigned)
      settle(sender, receiver)

      expect(receiver.stats[:rejected] - before[:rejected]).to eq(2)
      expect(receiver.stats[:missed] - before[:missed]).to eq(2)
      expect(receiver.l1_read("cached")).to eq([:miss])
      expect(receiver.l1_read("forged")).to eq([:miss])
      expect(receiver.l1_read("unsigned")).to eq([:miss])
      expect(receiver.read_multi("forged", "unsigned")).to eq({})
      expect(receiver.stats).to include(connected: true, reconnects: 0)
    end

    it "accepts messages signed with the same secret" do
      before = receiver.stats

      stranger.write("genuine", "signed with s1")

      eventually(message: "a message signed with s1 never arrived") do
        receiver.l1_read("genuine") == [:hit, "signed with s1"]
      end
      expect(receiver.stats[:rejected]).to eq(before[:rejected])
      expect(receiver.l2_read("genuine")).to be_nil
    end

    it "lets a store without a secret read signed messages, while one with another secret rejects them" do
      # The s2 store's own echo (which it accepts) comes after everything
      # published before it: once it is back, the store has judged them all.
      stranger.write("own", "echo", store: :wrong)
      eventually { stranger.stats(store: :wrong).values_at(:queued, :pending) == [0, 0] }
      wrong_before = stranger.stats(store: :wrong)

      sender.write("signed", "by s1")

      eventually(message: "the store without a secret never applied the signed message") do
        stranger.l1_read("signed", store: :unsigned) == [:hit, "by s1"]
      end
      # The s2 store got the same message (one channel): rejected.
      eventually(message: "the s2 store never rejected it") do
        stranger.stats(store: :wrong)[:rejected] == wrong_before[:rejected] + 1
      end
      expect(stranger.stats(store: :wrong)[:received]).to eq(wrong_before[:received] + 1)
      expect(stranger.l1_read("signed", store: :wrong)).to eq([:miss])
    end
  end
end
