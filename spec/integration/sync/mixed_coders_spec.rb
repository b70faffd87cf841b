# frozen_string_literal: true

# Stores that differ in coder: (as during a rolling deploy that adds one) share
# a bus. An entry a process cannot decode — the bytes of a coder it does not
# have, or of one whose load fails on them — is a miss there, counted in
# stats[:undecodable], and the read goes on to L2: never an exception in the
# application.
RSpec.describe "Sync: stores with different coders on one bus" do
  include SyncHelpers

  # A coder that wraps Marshal in an envelope of its own.
  let(:enveloping_coder) do
    Module.new do
      def self.dump(entry)
        "ENVELOPE#{Marshal.dump(entry)}"
      end

      def self.load(payload)
        raise ArgumentError, "not an envelope" unless payload.start_with?("ENVELOPE")

        Marshal.load(payload.delete_prefix("ENVELOPE")) # rubocop:disable Security/MarshalLoad
      end
    end
  end
  # A coder that cannot read the envelope.
  let(:picky_coder) do
    Module.new do
      def self.dump(entry)
        Marshal.dump(entry)
      end

      def self.load(payload)
        Marshal.load(payload) # rubocop:disable Security/MarshalLoad -- fails on the envelope, as intended
      end
    end
  end
  let(:bus) { start_redis }
  let(:l2) { ActiveSupport::Cache::MemoryStore.new }

  def store(**options)
    SyncedMemoryStore::Store.new(cache: l2, **bus_options(bus), **options).tap do |store|
      stores << store
      store.wait_for_connection
    end
  end

  def stores
    @stores ||= []
  end

  after { stores.each(&:close) }

  it "reads an entry another process's coder wrote as a miss, then from L2, without raising" do
    coded = store(coder: enveloping_coder)
    plain = store

    coded.write("user:1", { "name" => "Ada" })
    eventually(message: "the coded entry never arrived") { plain.stats[:l1_entries].positive? }

    expect(plain.read("user:1")).to eq({ "name" => "Ada" })
    expect(plain.fetch("user:1") { "computed" }).to eq({ "name" => "Ada" })
    expect(plain.read_multi("user:1")).to eq({ "user:1" => { "name" => "Ada" } })
    expect(plain.exist?("user:1")).to be(true)
    expect(plain.stats[:undecodable]).to be >= 1
  end

  it "reads an entry whose bytes its own coder cannot load as a miss" do
    coded = store(coder: enveloping_coder)
    picky = store(coder: picky_coder)

    coded.write("k", "v")
    eventually(message: "the coded entry never arrived") { picky.stats[:l1_entries].positive? }

    expect(picky.read("k")).to eq("v")
    expect(picky.stats[:undecodable]).to be >= 1
  end

  it "reads what a store without a coder wrote, with a coder" do
    plain = store
    coded = store(coder: enveloping_coder)

    plain.write("k", [1, 2])
    eventually(message: "the plain entry never arrived") { coded.stats[:l1_entries].positive? }

    expect(coded.read("k")).to eq([1, 2])
    expect(coded.stats[:undecodable]).to eq(0)
  end
end
