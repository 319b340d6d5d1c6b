//! Client of the NBP Web API (exchange rates). See shared/specs/nbp-and-invoicing.md.
