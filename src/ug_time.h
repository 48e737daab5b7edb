/*
 * Calendar arithmetic for the monthly quota window (UTC), free of libc's
 * time zone state so that it is exact, reentrant and testable.
 */

#ifndef UG_TIME_H
#define UG_TIME_H

#include <stdint.h>
#include <stddef.h>

/* The nominal month advertised as the window of the "month" policy. */
#define UG_MONTH_WINDOW_SEC  2592000

/* Months since January of year 0: year * 12 + (month - 1). */
int32_t ug_month_index(int64_t unix_sec);

/* Unix time of 00:00:00 UTC on the 1st of the given month index. */
int64_t ug_month_start(int32_t month_index);

/* Seconds from unix_sec until the next month starts (always >= 1). */
int64_t ug_month_reset_seconds(int64_t unix_sec);

/* Days in a month, month 1..12; leap years per the Gregorian rules. */
int ug_days_in_month(int64_t year, int month);

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12). */
int64_t ug_days_from_civil(int64_t y, int m, int d);

/* The date of a day counted from 1970-01-01 (negative before it). */
void ug_civil_from_days(int64_t days, int64_t *year, int *month, int *day);

/* a / b rounded towards minus infinity; b > 0. */
int64_t ug_floor_div(int64_t a, int64_t b);

/* Writes "YYYY-MM" and a NUL; buf must hold UG_MONTH_KEY_LEN + 1 bytes. */
#define UG_MONTH_KEY_LEN  7
size_t ug_month_key(int32_t month_index, char *buf);

#endif /* UG_TIME_H */
