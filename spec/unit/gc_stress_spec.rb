# frozen_string_literal: true

# The binding layer under GC.stress: a full garbage collection at every
# allocation made during a native call, so a Ruby object the Rust side forgot
# to keep alive (or read after a GC could have moved or freed it) fails here.
# Only the native calls run stressed; the rest of Ruby would take minutes.
RSpec.describe SyncedMemoryStore::Node, "under GC.stress" do
  subject(:node) { described_class.new({ size: 1 << 20 }) }

  let(:miss) { Object.new }

  def stressed
    GC.stress = true
    yield
  ensure
    GC.stress = false
  end

  values = {
    "a UTF-8 String" => "héllo wörld" * 3,
    "a binary String" => "\xFF\x00\x01".b * 20,
    "an Integer" => -12_345,
    "a Bignum" => 2**100,
    "a Float" => 3.25,
    "nil" => nil,
    "a nested Hash" => { "list" => [1, "two", :three, 4.5], "time" => Time.at(0) }
  }
  values.each do |description, value|
    it "writes, reads, fills and reports entries holding #{description}" do
      stressed { node.write("k", value, version: "v1", publish: false) }
      expect(stressed { node.read("k", "v1", miss) }).to eql(value)
      expect(stressed { node.read("k", "v2", miss) }).to equal(miss)
      expect(stressed { node.read_hit("k", nil, miss) }).to eql(value)
      expect(stressed { node.read_hit("k", "v1", miss) }).to eql(value)
      expect(stressed { node.read_hit("k", "v2", miss) }).to equal(miss)
      expect(stressed { node.entry("k") }).to eq([value, "v1", nil, :plain])

      ticket = stressed { node.ticket }
      stressed { node.fill("filled", value, ticket: ticket, expires_at: Time.now.to_f + 60, keep_for: 60.0) }
      expect(stressed { node.read("filled", nil, miss) }).to eql(value)
    end
  end

  it "compresses and inflates entries" do
    stressed { node.write("big", "z" * 5000, compress_threshold: 100, publish: false) }

    expect(stressed { node.entry("big") }).to eq(["z" * 5000, nil, nil, :compressed])
    expect(stressed { node.read("big", nil, miss) }).to eq("z" * 5000)
  end

  it "lists keys, deletes by list and reports stats" do
    %w[a b c d].each { |key| node.write(key, key * 100, publish: false) }

    expect(stressed { node.keys }).to contain_exactly("a", "b", "c", "d")
    expect(stressed { node.delete_selected(publish: false) { |key| %w[a b].include?(key) } }).to eq(2)
    expect(stressed { node.delete_glob("[c]", publish: false) }).to eq(1)
    expect(stressed { node.stats }).to include(l1_entries: 1, l1_hits: 0)
  end

  it "raises TypeError for what Marshal cannot dump, storing nothing" do
    expect { stressed { node.write("k", proc {}, publish: false) } }
      .to raise_error(TypeError)
    expect(node.read("k", nil, miss)).to equal(miss)
  end

  it "begins, finishes and ends changes, and reports events" do
    change = stressed { node.begin_change(%w[k other], publish: false) }
    stressed { node.write("k", "v", change: change, publish: false) }
    expect(stressed { node.end_change(change) }).to eq(1)
    expect(stressed { node.wait_events(0.0) }).to eq([])
  end
end
