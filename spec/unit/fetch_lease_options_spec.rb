# frozen_string_literal: true

# The lease: option of stampede protection (Store::FetchLease): what it takes,
# and that without a bus a fetch computes at once, claiming nothing.
RSpec.describe "SyncedMemoryStore::Store lease: option" do
  def store(**options)
    SyncedMemoryStore::Store.new(sync: false, **options).tap { |made| stores << made }
  end

  let(:stores) { [] }

  after { stores.each(&:close) }

  it "takes seconds (a Duration too), nil or false" do
    [10, 0.5, 10.seconds, nil, false].each do |lease|
      expect(store(lease: lease).fetch("k") { "v" }).to eq("v")
    end
  end

  it "refuses anything else with a ConfigurationError naming the option" do
    [0, -1, "10", :long, true].each do |lease|
      expect { store(lease: lease) }
        .to raise_error(SyncedMemoryStore::ConfigurationError, /\Alease: .*#{lease.inspect}/)
    end
  end

  it "refuses a bad per-call lease with an ArgumentError when the block is about to run" do
    cache = store
    expect { cache.fetch("k", lease: -2) { "v" } }.to raise_error(ArgumentError, /\Alease: .*-2/)
    expect(cache.read("k")).to be_nil
  end

  it "claims nothing without a bus: the block runs at once" do
    cache = store
    expect(cache.fetch("k", lease: 30) { "v" }).to eq("v")
    expect(cache.stats).to include(lease_claims: 0, lease_won: 0, lease_waits: 0, lease_taken: 0,
                                   lease_wait_timeouts: 0, lease_undecided: 0)
  end
end
