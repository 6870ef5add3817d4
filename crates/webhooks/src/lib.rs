//! Webhook signature verification and signing for Schematic, Flagsmith,
//! eSauti, Standard Webhooks and Stripe.
