-- A booking holds its time while it is requested, proposed or confirmed: two
-- live bookings of one resource can never hold the same time, even when two
-- people book at once (the service checks first and says which time is taken;
-- this index settles a race). Times are written as YYYY-MM-DD HH:MM.
CREATE UNIQUE INDEX threads_booked_slot_held ON threads (resource_id, booked_slot)
    WHERE kind = 'booking' AND booked_slot IS NOT NULL
    AND state IN ('requested', 'proposed', 'confirmed');
