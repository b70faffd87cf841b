# frozen_string_literal: true

module SyncedMemoryStore
  # The native half of one store (defined by the extension,
  # ext/synced_memory_store/src/ruby/node.rs): L1, and with sync on the bus
  # threads. The methods here give the native ones that take many arguments
  # names, so that a call in the store reads as what it does; the native
  # methods they call are positional and start with an underscore.
  class Node
    # Stores +value+ under +key+ as a change made by this process and, with
    # +publish+, queues it for every other process (by value up to
    # broadcast_max_bytes, else as an invalidation). +change+ is the id from
    # #begin_change when the write went through L2 first. +keep_for+ is how
    # long L1 may keep it (seconds, nil: until evicted). Raises TypeError,
    # storing nothing, when the value cannot be serialized. Returns false only
    # when +unless_exist+ found a live entry.
    def write(key, value, version: nil, expires_at: nil, keep_for: nil, compress_threshold: nil,
              unless_exist: false, publish: true, change: nil)
      _write(key, value, version, expires_at, keep_for, compress_threshold, unless_exist, publish, change)
    end

    # As #write, for the String a user coder made of the whole entry.
    def write_coded(key, bytes, version: nil, expires_at: nil, keep_for: nil, publish: true, change: nil)
      _write_coded(key, bytes, version, expires_at, keep_for, publish, change)
    end

    # Installs a value read from L2, unless the key changed (or L1 was
    # cleared, or is not trusted) since +ticket+ was taken. Returns whether it
    # installed.
    def fill(key, value, ticket:, version: nil, expires_at: nil, keep_for: nil, compress_threshold: nil)
      _fill(key, value, version, expires_at, keep_for, compress_threshold, ticket)
    end

    # As #fill, for the String a user coder made of the whole entry.
    def fill_coded(key, bytes, ticket:, version: nil, expires_at: nil, keep_for: nil)
      _fill_coded(key, bytes, version, expires_at, keep_for, ticket)
    end

    # Registers a change to +keys+ (an Array, or one key) before its L2 call;
    # returns its id. Every
    # key is then finished by #write or #delete with <tt>change:</tt>, and
    # #end_change (always, in an +ensure+) invalidates the keys that were not.
    def begin_change(keys, publish: true)
      _begin_change(keys, publish)
    end

    # Removes +key+ here and, with +publish+, in every other process; returns
    # whether a live entry was here.
    def delete(key, publish: true, change: nil)
      _delete(key, publish, change)
    end

    # Drops every entry here and, with +publish+, in every other process.
    def clear(publish: true)
      _clear(publish)
    end

    # Removes the keys matching the Redis-style +glob+ here and, with
    # +publish+, in every other process; returns how many were removed here.
    def delete_glob(glob, publish: true)
      _delete_glob(glob, publish)
    end

    # Removes the keys the block selects here and, with +publish+, makes every
    # other process drop everything (they cannot run the block). Fills in
    # flight are fenced off before the keys are picked. Returns how many were
    # removed here.
    def delete_selected(publish: true, &selects)
      fence_fills
      _delete_listed(keys.select(&selects), publish)
    end
  end
end
