/** The patient identity feed (IHE PIXm ITI-104): reading what a feed request asks. Its effect on the store is src/store/identity-feed.ts. */
export * from './feed-resource.ts';
