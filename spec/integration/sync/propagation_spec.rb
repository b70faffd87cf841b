# frozen_string_literal: true

require "active_support/cache/redis_cache_store"

# Changes made in one process reach another process's L1 over the bus, with
# real processes and a real redis-server. With a MemoryStore L2 per process, a
# value the reader's own L2 has never seen can only have come over the bus.
RSpec.describe "Sync: changes in one process reach another process's L1" do
  include SyncHelpers

  let(:bus) { start_redis }

  context "with a MemoryStore L2 in each process" do
    let(:peers) { spawn_peers(:writer, :reader, **bus_options(bus, cache: :memory_store)) }
    let(:writer) { peers.first }
    let(:reader) { peers.last }

    before { wait_for_connections(writer, reader) }

    it "ships a write by value: the reader serves it from L1 though its own L2 never had it" do
      expect(writer.write("user:1", { "name" => "Ada", "roles" => [:admin] })).to be(true)

      eventually(message: "the write never reached the reader's L1") do
        reader.l1_read("user:1") == [:hit, { "name" => "Ada", "roles" => [:admin] }]
      end
      expect(reader.read("user:1")).to eq({ "name" => "Ada", "roles" => [:admin] })
      expect(reader.exist?("user:1")).to be(true)
      expect(reader.fetch("user:1", "computed")).to eq([{ "name" => "Ada", "roles" => [:admin] }, false])
      expect(reader.l2_read("user:1")).to be_nil
      expect(reader.stats).to include(l2_hits: 0)
    end

    it "stamps when the latest change was applied, on the CLOCK_MONOTONIC all processes share" do
      before = reader.now
      writer.write("flag", "on")
      eventually { reader.l1_read("flag") == [:hit, "on"] }

      expect(reader.stats[:last_applied_at]).to be_a(Float).and(be_between(before, reader.now))
    end

    it "replaces the reader's copy on an update" do
      writer.write("setting", "v1")
      eventually { reader.l1_read("setting") == [:hit, "v1"] }

      writer.write("setting", "v2")

      eventually(message: "the update never reached the reader") { reader.read("setting") == "v2" }
      expect(reader.l2_read("setting")).to be_nil
    end

    it "drops the reader's copy on a delete" do
      writer.write("flag", "on")
      eventually { reader.l1_read("flag") == [:hit, "on"] }

      writer.delete("flag")

      eventually(message: "the reader still serves the deleted value") { reader.l1_read("flag") == [:miss] }
      expect(reader.read("flag")).to be_nil
    end

    it "empties the reader's L1 on a clear" do
      writer.write_multi({ "a" => 1, "b" => 2, "c" => 3 })
      eventually { %w[a b c].all? { |key| reader.l1_read(key).first == :hit } }

      writer.clear

      eventually(message: "the reader still serves cleared values") do
        %w[a b c].all? { |key| reader.l1_read(key) == [:miss] }
      end
      expect(reader.read_multi("a", "b", "c")).to eq({})
    end

    it "ships write_multi by value, every entry" do
      writer.write_multi({ "m1" => "one", "m2" => 2, "m3" => [3] })

      eventually(message: "write_multi never fully reached the reader") do
        reader.read_multi("m1", "m2", "m3") == { "m1" => "one", "m2" => 2, "m3" => [3] }
      end
      expect(%w[m1 m2 m3].map { |key| reader.l2_read(key) }).to eq([nil, nil, nil])
    end

    it "drops exactly the keys a glob delete_matched matches in the reader" do
      writer.write_multi({ "user:1" => "u1", "user:2" => "u2", "post:1" => "p1" })
      eventually { %w[user:1 user:2 post:1].all? { |key| reader.l1_read(key).first == :hit } }

      writer.delete_matched("user:*")

      eventually(message: "the reader still serves user:* keys") do
        reader.l1_read("user:1") == [:miss] && reader.l1_read("user:2") == [:miss]
      end
      # Ordered after the delete_matched on the bus: once it arrived, so had the glob.
      settle(writer, reader)
      expect(reader.l1_read("post:1")).to eq([:hit, "p1"])
    end

    it "makes the reader drop its whole L1 on a Regexp delete_matched (peers cannot run a Ruby Regexp)" do
      writer.write_multi({ "user:1" => "u1", "post:1" => "p1" })
      eventually { %w[user:1 post:1].all? { |key| reader.l1_read(key).first == :hit } }

      writer.delete_matched(/\Auser:/)

      eventually(message: "the reader still serves a key the Regexp matched") { reader.l1_read("user:1") == [:miss] }
      expect(reader.l1_read("post:1")).to eq([:miss])
      expect(writer.read("post:1")).to eq("p1")
    end

    it "does not tell other processes about a silent write" do
      writer.write("quiet", "before")
      eventually { reader.l1_read("quiet") == [:hit, "before"] }
      # The write's own echo settles it; a silent change before then is undone
      # by the echo (see "silent changes racing their key's echo" below).
      eventually { writer.stats[:pending].zero? }
      # A change counts as published once Redis answered its PUBLISH; the
      # answer to one sent directly is read later (flush_sync waits for it).
      writer.flush_sync(5)
      published = writer.stats[:published]

      writer.write("quiet", "silent", silent: true)
      # Anything the silent write had published would be ordered before this.
      settle(writer, reader)
      writer.flush_sync(5)

      expect(reader.read("quiet")).to eq("before")
      expect(writer.read("quiet")).to eq("silent")
      expect(writer.stats[:published]).to eq(published + 1) # the barrier only
    end

    context "when an entry is larger than broadcast_max_bytes" do
      let(:peers) do
        spawn_peers(:writer, :reader, **bus_options(bus, cache: :memory_store, broadcast_max_bytes: 1024))
      end

      it "ships it as an invalidation: the reader drops its copy and falls back to its own L2" do
        writer.write("doc", "small")
        eventually { reader.l1_read("doc") == [:hit, "small"] }
        reader.l2_write("doc", "the reader's own L2 copy")

        writer.write("doc", "x" * 4096)

        eventually(message: "the reader still serves the replaced small value") { reader.l1_read("doc") == [:miss] }
        expect(reader.read("doc")).to eq("the reader's own L2 copy")
        expect(writer.read("doc")).to eq("x" * 4096)
      end

      it "still ships entries up to the limit by value" do
        writer.write("doc", "y" * 900)

        eventually(message: "the entry never reached the reader") { reader.l1_read("doc") == [:hit, "y" * 900] }
      end
    end
  end

  # The bus is frozen for the few milliseconds between a published change and
  # a silent one, so the published change's echo comes back after the silent
  # change, every time.
  context "with silent changes racing their key's echo" do
    let(:writer) { spawn_peer(:writer, **bus_options(bus, cache: :memory_store, health_timeout: 5)) }

    before { wait_for_connections(writer) }

    def echo_after(&silent_change)
      bus.pause
      begin
        silent_change.call
      ensure
        bus.resume
      end
      writer.flush_sync(5)
      eventually(message: "the published change never echoed") { writer.stats[:pending].zero? }
    end

    # The echo of the earlier published change must not put its value back over
    # the silent change (node/pending.rs: overridden_here, node/change.rs: changed_silently).
    it "keeps a silent write in the writer's L1" do
      echo_after do
        writer.write("k", "published")
        writer.write("k", "silent", silent: true)
      end

      expect([writer.read("k"), writer.l2_read("k")]).to eq(%w[silent silent])
    end

    it "keeps a silently deleted key out of the writer's L1" do
      echo_after do
        writer.write("k", "published")
        writer.delete("k", silent: true)
      end

      expect([writer.read("k"), writer.l2_read("k")]).to eq([nil, nil])
    end

    it "keeps a silent clear's keys out of the writer's L1" do
      echo_after do
        writer.write("k", "published")
        writer.clear(silent: true)
      end

      expect([writer.read("k"), writer.l2_read("k")]).to eq([nil, nil])
    end

    it "keeps a silent delete_matched's keys out of the writer's L1" do
      echo_after do
        writer.write("user:1", "published")
        writer.delete_matched("user:*", silent: true)
      end

      expect([writer.read("user:1"), writer.l2_read("user:1")]).to eq([nil, nil])
    end
  end

  context "with a shared RedisCacheStore L2 (counters)" do
    let(:l2) { start_redis }
    let(:peers) do
      l2_options = { url: l2.url, namespace: l2_namespace }
      spawn_peers(:writer, :reader, **bus_options(bus, cache: [:redis_cache_store, l2_options]))
    end
    let(:writer) { peers.first }
    let(:reader) { peers.last }

    before { wait_for_connections(writer, reader) }

    it "drops the reader's copy of a counter when another process increments it" do
      writer.write("hits", 1, raw: true)
      eventually { reader.l1_read("hits") == [:hit, "1"] }

      expect(writer.increment("hits")).to eq(2)

      eventually(message: "the reader still serves the old count") { reader.l1_read("hits") == [:miss] }
      expect(reader.read("hits", raw: true)).to eq("2")
      expect(reader.l1_read("hits")).to eq([:hit, "2"])

      expect(reader.decrement("hits", 2)).to eq(0)
      eventually(message: "the writer still serves the old count") { writer.l1_read("hits") == [:miss] }
      expect(writer.read("hits", raw: true)).to eq("0")
    end
  end
end
