# frozen_string_literal: true

require "redis"

# The Sentinel forms of the redis: option, as redis-rb and redis-client take
# them, reach the native side in one shape; mistakes are refused when the
# store is made, naming the option and never a password.
RSpec.describe "The redis: option with sentinels" do
  let(:stores) { [] }

  after { stores.each { |store| store.close(0.1) } }

  def store(redis)
    SyncedMemoryStore::Store.new(redis: redis, health_timeout: 0.3).tap { |store| stores << store }
  end

  it "takes redis-rb's Hash: sentinels as Hashes or URLs, the primary's name, role: :master" do
    parts = SyncedMemoryStore::RedisOption.normalize(
      sentinels: [{ host: "10.0.0.1", port: 26_379 }, "redis://10.0.0.2:26380"], name: "mymaster", role: :master,
      sentinel_password: "s", password: "p", db: 2
    )

    expect(parts).to eq(sentinels: [{ host: "10.0.0.1", port: 26_379 }, { url: "redis://10.0.0.2:26380" }],
                        name: "mymaster", role: "master", sentinel_password: "s", password: "p", db: 2)
    expect(store(parts).inspect).to include("sync=sentinel mymaster via 10.0.0.1:26379,10.0.0.2:26380 " \
                                            "channel synced_memory_store:2")
  end

  it "reads the sentinels, the name (the URL's host) and the database of a redis-rb 4 client" do
    client = Redis.new(url: "redis://:pw@mymaster/3", sentinels: [{ host: "127.0.0.1", port: 26_379 }], role: :master)

    expect(store(client).inspect).to include("sync=sentinel mymaster via 127.0.0.1:26379 channel synced_memory_store:3")
  end

  it "reads a redis-client SentinelConfig without asking it for the primary" do
    sentinel = Struct.new(:host, :port, :username, :password).new("127.0.0.1", 26_380, nil, "sentinel-pw")
    config = Class.new do
      define_method(:initialize) do |sentinels|
        @name = "cache-primary"
        @role = :master
        @sentinels = sentinels
      end
      define_method(:sentinels) { @sentinels }
      define_method(:sentinel?) { true }
      define_method(:host) { raise "a SentinelConfig's host asks the sentinels" }
      define_method(:db) { 1 }
      define_method(:username) { nil }
      define_method(:password) { "node-pw" }
      define_method(:ssl) { false }
    end.new([sentinel])
    client = Struct.new(:config).new(config)

    expect(SyncedMemoryStore::RedisOption.normalize(client))
      .to eq(sentinels: [{ host: "127.0.0.1", port: 26_380, password: "sentinel-pw" }], name: "cache-primary",
             role: "master", db: 1, password: "node-pw", ssl: false)
  end

  it "refuses a replica, a missing name and malformed sentinels, naming the option" do
    sentinels = [{ host: "127.0.0.1", port: 26_379 }]
    expect { store(sentinels: sentinels, name: "m", role: :replica) }
      .to raise_error(SyncedMemoryStore::ConfigurationError, /role: must be :master with sentinels/)
    expect { store(sentinels: sentinels) }
      .to raise_error(SyncedMemoryStore::ConfigurationError, /sentinels: needs name:/)
    expect { store(sentinels: "127.0.0.1:26379", name: "m") }
      .to raise_error(SyncedMemoryStore::ConfigurationError, /sentinels: must be an Array/)
    expect { store(sentinels: [{ host: "h", prot: 1 }], name: "m") }
      .to raise_error(SyncedMemoryStore::ConfigurationError, /sentinels\[0\] has unknown keys :prot/)
    expect { store(sentinels: [{ host: "h", port: 70_000 }], name: "m") }
      .to raise_error(SyncedMemoryStore::ConfigurationError, /sentinels\[0\] port must be between 1 and 65535/)
    expect { store(sentinels: sentinels, name: "m", cluster: ["redis://127.0.0.1:7000"]) }
      .to raise_error(SyncedMemoryStore::ConfigurationError, /sentinels: and cluster: exclude each other/)
  end

  it "never shows a sentinel password" do
    expect { store(sentinels: ["http://:hunter2@127.0.0.1:1"], name: "m") }
      .to raise_error(SyncedMemoryStore::ConfigurationError) { |error| expect(error.message).not_to include("hunter2") }
    expect { store(sentinels: [{ host: "h" }], name: "m", sentinel_password: 12_345) }
      .to raise_error(SyncedMemoryStore::ConfigurationError) { |error| expect(error.message).not_to include("12345") }
  end
end
