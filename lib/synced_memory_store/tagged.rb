# frozen_string_literal: true

module SyncedMemoryStore
  # The form a tagged entry's value takes in both levels (and on the bus):
  # <tt>[MARKER, value, { tag_key => version }]</tt>, the versions its tags
  # had when it was written. A plain Array of Strings and a Hash, so that any
  # L2 and any serializer keep it, and L1 rebuilds it natively on a hit.
  #
  # The store writes an untagged value that happens to have this shape
  # wrapped with no tags, so a value read back is always the value written.
  # Someone reading the L2 directly sees the wrapped form: Tagged.value and
  # Tagged.versions take it apart.
  module Tagged
    # First element of a wrapped value; the NUL keeps it out of real data.
    MARKER = "\0synced_memory_store:tagged"

    module_function

    # +value+ wrapped with +versions+ (<tt>{ tag_key => version }</tt>).
    def wrap(value, versions)
      [MARKER, value, versions]
    end

    # Whether +value+ is in the wrapped form.
    def tagged?(value)
      value.instance_of?(Array) && value.size == 3 && MARKER == value[0] && value[2].is_a?(Hash)
    end

    # The value inside a wrapped +value+.
    def value(wrapped)
      wrapped[1]
    end

    # The <tt>{ tag_key => version }</tt> a wrapped +value+ recorded.
    def versions(wrapped)
      wrapped[2]
    end
  end
end
