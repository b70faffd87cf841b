# frozen_string_literal: true

require_relative "lib/synced_memory_store/version"

Gem::Specification.new do |spec|
  spec.name = "synced_memory_store"
  spec.version = SyncedMemoryStore::VERSION
  spec.authors = ["synced_memory_store developers"]
  spec.summary = "A Rails cache store: hot entries in process memory, kept in sync across processes via Redis"
  spec.description = <<~DESC
    SyncedMemoryStore::Store is a two-level ActiveSupport cache store: an in-process L1 held by a
    Rust core (bytes only, bounded by a byte budget) in front of any ActiveSupport store as L2.
    Writes, deletes and clears are broadcast over Redis pub/sub by native threads so every
    process's memory stays in sync.
  DESC
  spec.homepage = "https://github.com/synced-memory-store/synced_memory_store"
  spec.license = "MIT"
  spec.required_ruby_version = [">= 3.1", "< 3.5"]
  spec.metadata["rubygems_mfa_required"] = "true"

  spec.files = Dir[
    "lib/**/*.rb", "sig/**/*.rbs",
    "ext/synced_memory_store/extconf.rb", "ext/synced_memory_store/Cargo.toml",
    "ext/synced_memory_store/src/**/*.rs",
    "Cargo.toml", "Cargo.lock", "README.md", "LICENSE.txt"
  ]
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/synced_memory_store/extconf.rb"]

  spec.add_dependency "activesupport", ">= 6.1", "< 8.2"
end
