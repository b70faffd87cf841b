# frozen_string_literal: true

# The redis: option's cluster: part, as redis-rb takes it, turned into what
# the native bus takes: "host:port" seeds, and credentials and TLS from the
# rest of the option or else from the first URL.
RSpec.describe SyncedMemoryStore::RedisOption do
  def normalize(value)
    described_class.normalize(value)
  end

  it "takes seeds as URLs, host:port Strings and Hashes" do
    parts = normalize(cluster: ["redis://10.0.0.1:7000", "10.0.0.2:7001", { "host" => "10.0.0.3", "port" => 7002 }])

    expect(parts[:cluster]).to eq(["10.0.0.1:7000", "10.0.0.2:7001", "10.0.0.3:7002"])
  end

  it "takes credentials and TLS from the first URL unless the option gives them" do
    expect(normalize(cluster: ["rediss://bus:pw@10.0.0.1:7000", "redis://10.0.0.2:7001"]))
      .to include(url: "rediss://bus:pw@10.0.0.1:7000")
    expect(normalize(url: "redis://other:pw@h:1", cluster: ["rediss://bus:pw@10.0.0.1:7000"]))
      .to include(url: "redis://other:pw@h:1")
    expect(normalize(cluster: ["10.0.0.1:7000"], username: "bus", password: "pw", ssl: true))
      .to include(username: "bus", password: "pw", ssl: true)
  end

  it "accepts redis-rb's cluster client options that say nothing about where Redis is" do
    expect(normalize(cluster: ["10.0.0.1:7000"], replica: false, fixed_hostname: nil, timeout: 1))
      .to eq(cluster: ["10.0.0.1:7000"])
  end

  it "refuses nodes it cannot reach, without showing a password" do
    expect { normalize(cluster: []) }.to raise_error(SyncedMemoryStore::ConfigurationError, /non-empty Array/)
    expect { normalize(cluster: "redis://h:1") }.to raise_error(SyncedMemoryStore::ConfigurationError, /Array/)
    expect { normalize(cluster: ["h"]) }.to raise_error(SyncedMemoryStore::ConfigurationError, /host:port/)
    expect { normalize(cluster: [{ host: "h" }]) }.to raise_error(SyncedMemoryStore::ConfigurationError, /host:port/)
    expect { normalize(cluster: ["redis://u:hunter2@h"]) }
      .to raise_error(SyncedMemoryStore::ConfigurationError) { |error| expect(error.message).not_to include("hunter2") }
  end

  it "reaches the native bus, which refuses a database other than 0" do
    expect { SyncedMemoryStore::Store.new(redis: { cluster: ["127.0.0.1:7000"], db: 2 }) }
      .to raise_error(SyncedMemoryStore::ConfigurationError, /db must be 0 with cluster:/)
  end
end
