# frozen_string_literal: true

module SyncedMemoryStore
  class Store < ActiveSupport::Cache::Store
    # Where the ActiveSupport versions this gem supports (6.1 to 8.1) differ in
    # what a store sees, one flag each, read from the loaded version. The code
    # that branches on a flag names it; the comment here says what changed.
    module ActiveSupportVersions
      VERSION = ActiveSupport.gem_version
      private_constant :VERSION

      def self.at_least(version)
        VERSION >= Gem::Version.new(version)
      end

      # 6.1's Entry keeps its expiry relative to a creation stamp and
      # compresses in Entry.new; 7.0 keeps an absolute expiry and compresses in
      # the coder (serialize_entry), so an L2 compresses with its own settings.
      RELATIVE_EXPIRY = !at_least("7.0")

      # 7.1 builds an ActiveSupport::Cache::Coder from serializer: and
      # compressor:; before, neither option exists.
      SERIALIZER_OPTIONS = at_least("7.1")

      # 7.1 creates a missing counter (with the call's expires_in) where
      # 6.1 and 7.0 leave it missing and return nil.
      COUNTERS_CREATE_MISSING = at_least("7.1")

      # 7.2's fetch hands its miss to save_block_result_to_cache(name, key,
      # options); before, (name, options).
      FETCH_HOOK_TAKES_KEY = at_least("7.2")

      # 7.1 instruments events without a key through _instrument (cleanup's
      # payload is { size: n }); before, instrument takes the Hash as the key.
      KEYLESS_INSTRUMENT = at_least("7.1")
    end
  end
end
